/**
 * Finding the tokmon server to start (no `vscode`): the `tokmon.path` setting, else `tokmon` on
 * PATH, else the Python extension's interpreter with `-m tokmon`.
 */

import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { INSTALL_COMMAND } from "./protocol";

export type CandidateSource = "setting" | "path" | "python";

export interface ServerCommand {
  command: string;
  args: string[];
  source: CandidateSource;
  /** Directory to start the server in (never the workspace: see {@link pythonServerArgs}). */
  cwd?: string;
}

export type Discovery =
  | { ok: true; server: ServerCommand; tried: string[] }
  | { ok: false; reason: "missing" | "bad-setting"; message: string; tried: string[] };

/** Arguments that make tokmon serve LSP over stdio. */
export const SERVE_ARGS = ["serve"];

export interface DiscoveryHost {
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  homedir: string;
  /** True when `p` is a file we may execute. */
  isExecutable(p: string): boolean;
  /** Run `python -c code`, resolve stdout; reject when it fails. */
  runPython(python: string, code: string): Promise<string>;
}

/** The real host: this process's environment and file system. */
export function nodeHost(): DiscoveryHost {
  return {
    env: process.env,
    platform: process.platform,
    homedir: os.homedir(),
    isExecutable(p: string): boolean {
      try {
        const st = fs.statSync(p);
        if (!st.isFile()) {
          return false;
        }
        if (process.platform === "win32") {
          return true;
        }
        fs.accessSync(p, fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    },
    runPython(python: string, code: string): Promise<string> {
      return new Promise((resolve, reject) => {
        const opts = { timeout: 15000, windowsHide: true, cwd: fixedCwd(os.homedir()) };
        execFile(python, ["-c", code], opts, (err, stdout) => {
          if (err) {
            reject(new Error(err.message));
          } else {
            resolve(stdout.toString());
          }
        });
      });
    },
  };
}

function pathKey(env: NodeJS.ProcessEnv): string {
  // Windows environments may spell it "Path".
  return Object.keys(env).find((k) => k.toUpperCase() === "PATH") ?? "PATH";
}

/** Expand a leading `~` and environment variables written as ${env:NAME}. */
export function expandPath(p: string, host: Pick<DiscoveryHost, "env" | "homedir">): string {
  let s = p.trim().replace(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => host.env[name] ?? "");
  if (s === "~" || s.startsWith("~/") || s.startsWith("~\\")) {
    s = host.homedir + s.slice(1);
  }
  return s;
}

/** Find an executable on PATH (honouring PATHEXT on Windows), or null. */
export function findOnPath(name: string, host: DiscoveryHost): string | null {
  const win = host.platform === "win32";
  const p = win ? path.win32 : path.posix;
  const sep = win ? ";" : ":";
  const dirs = (host.env[pathKey(host.env)] ?? "").split(sep).filter((d) => d.length > 0);
  const exts = win
    ? ["", ...(host.env.PATHEXT ?? ".COM;.EXE;.BAT;.CMD").split(";").filter(Boolean).map((e) => e.toLowerCase())]
    : [""];
  for (const dir of dirs) {
    for (const ext of exts) {
      if (win && ext === "" && !/\.[A-Za-z0-9]+$/.test(name)) {
        continue;
      }
      const candidate = p.join(dir.replace(/^"(.*)"$/, "$1"), name + ext);
      if (host.isExecutable(candidate)) {
        return candidate;
      }
    }
  }
  return null;
}

function looksLikePath(s: string): boolean {
  return s.includes("/") || s.includes("\\");
}

/**
 * Drops the cwd entries (`''`, `.`) from `sys.path` before anything is imported: `python -c`
 * and `python -m` put the working directory first, so a workspace holding a `tokmon/` folder or
 * a `json.py` would otherwise run inside the server (same bootstrap as tokmon/safepython.py).
 */
export const SAFE_PATH_BOOT = "import sys;sys.path[:]=[p for p in sys.path if p not in ('','.')];";

/** Runs `python -m <argv[1]>` after {@link SAFE_PATH_BOOT} (for interpreters without `-P`). */
export const MODULE_BOOT =
  SAFE_PATH_BOOT + "import runpy;m=sys.argv.pop(1);runpy.run_module(m,run_name='__main__',alter_sys=True)";

/**
 * Probe code: prints tokmon's version and whether the interpreter has `-P` (3.11+), as
 * `<version> <0|1>`, when it can import tokmon (never from the cwd).
 */
export const PYTHON_PROBE =
  SAFE_PATH_BOOT +
  "import tokmon;sys.stdout.write(getattr(tokmon,'__version__','0')+' '+str(int(sys.version_info>=(3,11))))";

/**
 * argv after the interpreter that serves tokmon without the cwd on `sys.path`: `-P -m tokmon`
 * when the probe said 3.11+, else the bootstrap. Older probes' output (a bare version) gets the
 * bootstrap, which works on every version.
 */
export function pythonServerArgs(probeOutput: string): string[] {
  const hasSafePath = probeOutput.trim().split(/\s+/)[1] === "1";
  return hasSafePath ? ["-P", "-m", "tokmon", ...SERVE_ARGS] : ["-c", MODULE_BOOT, "tokmon", ...SERVE_ARGS];
}

/** A directory the server can always start in and that no workspace controls: the root. */
export function fixedCwd(homedir: string): string {
  return path.parse(path.resolve(homedir)).root;
}

/**
 * Decide how to start the server. `pythonPath` is the Python extension's interpreter, if any.
 * An explicit `tokmon.path` that does not exist is an error, not a silent fallback.
 */
export async function discoverServer(
  settingPath: string | undefined,
  pythonPath: string | undefined,
  host: DiscoveryHost,
): Promise<Discovery> {
  const tried: string[] = [];
  const setting = (settingPath ?? "").trim();
  if (setting) {
    const expanded = expandPath(setting, host);
    tried.push(`tokmon.path = ${setting}`);
    const resolved = looksLikePath(expanded) ? expanded : findOnPath(expanded, host);
    if (resolved && host.isExecutable(resolved)) {
      return { ok: true, server: { command: resolved, args: [...SERVE_ARGS], source: "setting" }, tried };
    }
    return {
      ok: false,
      reason: "bad-setting",
      message: `The tokmon.path setting points to "${setting}", which is not an executable file.`,
      tried,
    };
  }

  tried.push("tokmon on PATH");
  const onPath = findOnPath("tokmon", host);
  if (onPath) {
    return { ok: true, server: { command: onPath, args: [...SERVE_ARGS], source: "path" }, tried };
  }

  if (pythonPath && pythonPath.trim()) {
    const python = expandPath(pythonPath, host);
    tried.push(`${python} -m tokmon`);
    try {
      const probed = await host.runPython(python, PYTHON_PROBE);
      return {
        ok: true,
        server: { command: python, args: pythonServerArgs(probed), source: "python", cwd: fixedCwd(host.homedir) },
        tried,
      };
    } catch {
      // The interpreter exists but has no tokmon: fall through to "missing".
    }
  }

  return {
    ok: false,
    reason: "missing",
    message: `tokmon was not found (tried: ${tried.join("; ")}). Install it with: ${INSTALL_COMMAND}`,
    tried,
  };
}
