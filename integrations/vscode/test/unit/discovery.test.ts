import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import {
  type DiscoveryHost,
  discoverServer,
  expandPath,
  findOnPath,
  MODULE_BOOT,
  nodeHost,
  PYTHON_PROBE,
} from "../../src/discovery";

let tmp: string;
let binA: string;
let binB: string;
let fakePythonOk: string;
let fakePythonNo: string;
let fakePythonOld: string;

function writeExecutable(file: string, body: string): void {
  fs.writeFileSync(file, body, { mode: 0o755 });
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tokmon-discovery-"));
  binA = path.join(tmp, "a");
  binB = path.join(tmp, "b");
  fs.mkdirSync(binA);
  fs.mkdirSync(binB);
  writeExecutable(path.join(binB, "tokmon"), "#!/bin/sh\nexit 0\n");
  // Not executable: must be skipped.
  fs.writeFileSync(path.join(binA, "tokmon"), "not a program", { mode: 0o644 });
  // Two fake interpreters: one "has" tokmon (prints a version), one fails like a missing module.
  fakePythonOk = path.join(tmp, "python-ok");
  writeExecutable(fakePythonOk, "#!/bin/sh\nprintf '0.1.0 1'\n"); // tokmon 0.1.0 on Python 3.11+
  fakePythonOld = path.join(tmp, "python-old");
  writeExecutable(fakePythonOld, "#!/bin/sh\nprintf '0.1.0 0'\n"); // Python 3.10: no -P
  fakePythonNo = path.join(tmp, "python-no");
  writeExecutable(fakePythonNo, "#!/bin/sh\necho \"No module named tokmon\" >&2\nexit 1\n");
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function host(pathDirs: string[], extra: Partial<DiscoveryHost> = {}): DiscoveryHost {
  return { ...nodeHost(), env: { PATH: pathDirs.join(path.delimiter) }, homedir: tmp, ...extra };
}

describe.skipIf(process.platform === "win32")("discoverServer on a real file system", () => {
  it("finds the first executable tokmon on PATH, skipping non-executables", async () => {
    const found = await discoverServer("", undefined, host([binA, binB]));
    expect(found).toMatchObject({ ok: true, server: { command: path.join(binB, "tokmon"), args: ["serve"], source: "path" } });
  });

  it("prefers tokmon.path and expands ~", async () => {
    const found = await discoverServer("~/b/tokmon", fakePythonOk, host([]));
    expect(found).toMatchObject({ ok: true, server: { command: path.join(binB, "tokmon"), source: "setting" } });
  });

  it("looks a bare tokmon.path name up on PATH", async () => {
    const found = await discoverServer("tokmon", undefined, host([binB]));
    expect(found.ok && found.server.command).toBe(path.join(binB, "tokmon"));
  });

  it("reports a tokmon.path that is not executable instead of falling back", async () => {
    const found = await discoverServer(path.join(binA, "tokmon"), fakePythonOk, host([binB]));
    expect(found).toMatchObject({ ok: false, reason: "bad-setting" });
    expect(found.ok ? "" : found.message).toContain(path.join(binA, "tokmon"));
  });

  it("falls back to the Python extension's interpreter with -P -m tokmon, started in the root", async () => {
    const found = await discoverServer(undefined, fakePythonOk, host([binA]));
    expect(found).toMatchObject({
      ok: true,
      server: { command: fakePythonOk, args: ["-P", "-m", "tokmon", "serve"], source: "python", cwd: "/" },
    });
  });

  it("uses the bootstrap that drops the cwd from sys.path before Python 3.11", async () => {
    const found = await discoverServer(undefined, fakePythonOld, host([binA]));
    expect(found).toMatchObject({
      ok: true,
      server: { command: fakePythonOld, args: ["-c", MODULE_BOOT, "tokmon", "serve"], source: "python", cwd: "/" },
    });
  });

  it("never imports tokmon from the cwd: the probe and the bootstrap in a shadowing workspace", async () => {
    const python = findOnPath("python3", { ...nodeHost() });
    expect(python).not.toBeNull();
    const repo = fs.mkdtempSync(path.join(tmp, "cloned-repo-"));
    const marker = path.join(tmp, "shadow-marker");
    fs.mkdirSync(path.join(repo, "tokmon"));
    fs.writeFileSync(path.join(repo, "tokmon", "__init__.py"), `open(${JSON.stringify(marker)}, "w").write("x")\n`);
    const { execFileSync } = await import("node:child_process");
    const out = execFileSync(python!, ["-c", PYTHON_PROBE], { cwd: repo }).toString();
    expect(out).toMatch(/^\S+ [01]$/);
    const help = execFileSync(python!, ["-c", MODULE_BOOT, "tokmon", "--version"], { cwd: repo }).toString();
    expect(help).toContain("tokmon");
    expect(fs.existsSync(marker)).toBe(false);
    // control: a plain `python -c "import tokmon"` there does run the shadowing package
    execFileSync(python!, ["-c", "import tokmon"], { cwd: repo });
    expect(fs.existsSync(marker)).toBe(true);
  });

  it("says tokmon is missing, with the install command, when nothing works", async () => {
    const found = await discoverServer(undefined, fakePythonNo, host([binA]));
    expect(found.ok).toBe(false);
    if (!found.ok) {
      expect(found.reason).toBe("missing");
      expect(found.message).toContain("pipx install --force tokmon-cli");
      expect(found.tried).toEqual(["tokmon on PATH", `${fakePythonNo} -m tokmon`]);
    }
  });

  it("probes a real interpreter for the tokmon module", async () => {
    // The project's own python3 has tokmon installed; the negative case is python-no above.
    const python = findOnPath("python3", { ...nodeHost() });
    expect(python).not.toBeNull();
    const found = await discoverServer(undefined, python!, host([binA]));
    expect(found).toMatchObject({ ok: true, server: { source: "python" } });
  });
});

describe("findOnPath on Windows rules", () => {
  it("tries PATHEXT extensions and honours a Path variable spelled differently", () => {
    const seen: string[] = [];
    const winHost: DiscoveryHost = {
      env: { Path: "C:\\tools;\"C:\\Program Files\\py\\Scripts\"", PATHEXT: ".COM;.EXE;.CMD" },
      platform: "win32",
      homedir: "C:\\Users\\u",
      isExecutable: (p) => {
        seen.push(p);
        return p === "C:\\Program Files\\py\\Scripts\\tokmon.exe";
      },
      runPython: () => Promise.reject(new Error("unused")),
    };
    expect(findOnPath("tokmon", winHost)).toBe("C:\\Program Files\\py\\Scripts\\tokmon.exe");
    expect(seen).toEqual([
      "C:\\tools\\tokmon.com",
      "C:\\tools\\tokmon.exe",
      "C:\\tools\\tokmon.cmd",
      "C:\\Program Files\\py\\Scripts\\tokmon.com",
      "C:\\Program Files\\py\\Scripts\\tokmon.exe",
    ]);
  });

  it("expands ${env:NAME} and ~", () => {
    const h = { env: { TOOLS: "/opt/tools" }, homedir: "/home/u" };
    expect(expandPath("${env:TOOLS}/tokmon", h)).toBe("/opt/tools/tokmon");
    expect(expandPath("~/bin/tokmon", h)).toBe("/home/u/bin/tokmon");
    expect(expandPath("${env:NOPE}x", h)).toBe("x");
  });
});
