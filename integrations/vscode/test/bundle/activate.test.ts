/**
 * The packaged bundle (dist/extension.js, as it goes into the .vsix) activated in Node against a
 * stand-in `vscode` module, with the real vscode-languageclient starting the real Python server
 * on a temp copy of the corpus. Checks the wiring the unit tests cannot: discovery -> language
 * client -> version check -> status bar from pushes only -> tree -> commands -> thresholds.
 */

import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import Module from "node:module";
import * as os from "node:os";
import * as path from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import type { SessionRow } from "../../src/protocol";
import type { TreeNode } from "../../src/treeModel";
import { CORPUS, corporaPresent, PYTHON } from "../integration/harness";
import { changeSettings, createFakeVscode, type FakeState } from "./fakeVscode";

const ROOT = path.resolve(__dirname, "..", "..");
const BUNDLE = path.join(ROOT, "dist", "extension.js");

interface Extension {
  activate(context: unknown): void;
  deactivate(): Promise<void> | undefined;
}

interface Provider {
  getChildren(node?: TreeNode): Promise<TreeNode[]>;
  getTreeItem(node: TreeNode): { label: string; description?: string; contextValue?: string };
}

let currentLog: () => string[] = () => [];

/** Poll `fn` until it returns a truthy value (the fake UI has no events to wait on). */
async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) {
      return v;
    }
    if (Date.now() > end) {
      throw new Error(`timed out waiting for ${what}; extension log:\n${currentLog().join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The first main transcript and its (sessionId, cwd). */
function firstTranscript(claudeDir: string): { file: string; sessionId: string; cwd: string } {
  const projects = path.join(claudeDir, "projects");
  for (const dir of fs.readdirSync(projects).sort()) {
    const full = path.join(projects, dir);
    if (!fs.statSync(full).isDirectory()) {
      continue;
    }
    for (const f of fs.readdirSync(full).sort()) {
      if (!f.endsWith(".jsonl") || f.startsWith("agent-")) {
        continue;
      }
      for (const line of fs.readFileSync(path.join(full, f), "utf8").split("\n")) {
        try {
          const o = JSON.parse(line) as { sessionId?: unknown; cwd?: unknown; isSidechain?: unknown };
          if (typeof o.sessionId === "string" && typeof o.cwd === "string" && !o.isSidechain) {
            return { file: path.join(full, f), sessionId: o.sessionId, cwd: o.cwd };
          }
        } catch {
          // not JSON: skip
        }
      }
    }
  }
  throw new Error("no transcript in the corpus");
}

let seq = 0;
function assistantLine(sessionId: string, cwd: string, input: number, output: number): string {
  const n = `${process.pid}b${seq++}${Date.now()}`;
  return `${JSON.stringify({
    parentUuid: null,
    isSidechain: false,
    type: "assistant",
    cwd,
    sessionId,
    uuid: `u-bundle-${n}`,
    timestamp: new Date().toISOString(),
    requestId: `req_bundle${n}`,
    message: {
      id: `msg_bundle${n}`,
      type: "message",
      role: "assistant",
      model: "claude-sonnet-4-5-20250929",
      content: [{ type: "text", text: "ok" }],
      usage: { input_tokens: input, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: output },
    },
  })}\n`;
}

describe.skipIf(!corporaPresent(CORPUS))("the packaged extension, activated against the real server", () => {
  let tmp: string;
  let state: FakeState;
  let ext: Extension;
  let target: { file: string; sessionId: string; cwd: string };
  const savedEnv = { ...process.env };
  type Loader = (this: unknown, request: string, parent: unknown, isMain: boolean) => unknown;
  const M = Module as unknown as { _load: Loader };
  const originalLoad = M._load;

  beforeAll(() => {
    expect(fs.existsSync(BUNDLE), `build first: ${BUNDLE}`).toBe(true);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tokmon-vscode-bundle-"));
    const claudeDir = path.join(tmp, "claude");
    fs.cpSync(CORPUS, claudeDir, { recursive: true });
    target = firstTranscript(claudeDir);
    fs.mkdirSync(path.join(tmp, "home"));
    // The extension starts the server with its own environment: point it at the temp dirs.
    process.env.TOKMON_HOME = path.join(tmp, "tokmon");
    process.env.CLAUDE_CONFIG_DIR = claudeDir;
    process.env.HOME = path.join(tmp, "home");
    // No tokmon on PATH: discovery must fall back to the Python extension's interpreter.
    // (the interpreter's real executable: a pyenv shim would need PATH itself)
    const python = execFileSync(PYTHON, ["-c", "import sys; print(sys.executable)"]).toString().trim();
    expect(fs.existsSync(python), `${PYTHON} has no executable`).toBe(true);
    process.env.PATH = path.join(tmp, "no-tokmon-here");

    const fake = createFakeVscode(target.cwd);
    state = fake.state;
    currentLog = () => [...fake.state.log, `context: ${JSON.stringify([...fake.state.contextKeys])}`];
    state.pythonPath = python;
    M._load = function (request: string, parent: unknown, isMain: boolean): unknown {
      return request === "vscode" ? fake.module : originalLoad.call(this, request, parent, isMain);
    };
    ext = Module.createRequire(__filename)(BUNDLE) as Extension;
    const memento = new Map<string, unknown>();
    ext.activate({
      subscriptions: [],
      globalState: {
        get: (k: string) => memento.get(k),
        update: (k: string, v: unknown) => {
          memento.set(k, v);
          return Promise.resolve();
        },
        keys: () => [...memento.keys()],
      },
    });
  });

  afterAll(async () => {
    await ext?.deactivate();
    M._load = originalLoad;
    process.env = savedEnv;
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("finds the server through the Python interpreter and reaches the running state", async () => {
    await until("server running", () => state.contextKeys.get("tokmon.serverState") === "running");
    expect(state.log.join("\n")).toContain("-m tokmon serve (from python)");
    expect(state.messages).toEqual([]);
  });

  it("shows the summary in the status bar (idle on an old corpus)", async () => {
    const item = state.statusItems.find((i) => i.id === "tokmon.status");
    expect(item).toBeDefined();
    const text = await until("status text", () => !item!.text.includes("tokmon") && item!.text);
    expect(text).toBe("$(pulse) idle");
    expect(item!.visible).toBe(true);
    expect(item!.command).toBe("tokmon.openSidebar");
    const tooltip = (item!.tooltip as { value: string }).value;
    expect(tooltip).toContain("| Today |");
    expect(tooltip).toContain("No active 5-hour block.");
  });

  it("fills the Sessions tree, this workspace's project first", async () => {
    const provider = state.treeProviders.get("tokmon.sessions") as Provider;
    const projects = await provider.getChildren();
    expect(projects.length).toBeGreaterThan(1);
    const first = projects[0]!;
    expect(first.kind === "project" && first.group.projectPath).toBe(target.cwd);
    expect(provider.getTreeItem(first).description).toMatch(/^this workspace · \d+ sessions? · /);
    const sessions = await provider.getChildren(first);
    const mine = sessions.find((n) => n.kind === "session" && n.row.sessionId === target.sessionId);
    expect(mine).toBeDefined();
    const [models, blocks] = await provider.getChildren(mine);
    expect((await provider.getChildren(models)).every((n) => n.kind === "model")).toBe(true);
    expect((await provider.getChildren(blocks)).length).toBeGreaterThan(0);
  });

  it("tags, renames and copies a session from the context menu commands", async () => {
    const provider = state.treeProviders.get("tokmon.sessions") as Provider;
    const [first] = await provider.getChildren();
    const node = (await provider.getChildren(first)).find(
      (n) => n.kind === "session" && n.row.sessionId === target.sessionId,
    )!;
    state.inputAnswers.push("bundle, #smoke");
    await state.commands.get("tokmon.session.tag")!(node);
    state.inputAnswers.push("Named from the bundle test");
    await state.commands.get("tokmon.session.rename")!(node);
    await state.commands.get("tokmon.session.copyId")!(node);
    expect(state.clipboard).toBe(target.sessionId);
    // the tree shows the server's answer
    const again = (await provider.getChildren((await provider.getChildren())[0])).find(
      (n): n is { kind: "session"; row: SessionRow } => n.kind === "session" && n.row.sessionId === target.sessionId,
    )!;
    expect(again.row.tags).toEqual(["bundle", "smoke"]);
    expect(provider.getTreeItem(again).label).toBe("Named from the bundle test");
    // and the tag filter keeps only it
    const provider2 = provider as Provider & { setTag(t: string | null): void };
    provider2.setTag("smoke");
    expect(state.contextKeys.get("tokmon.filterActive")).toBe(true);
    const filtered = await provider.getChildren();
    const ids = (await Promise.all(filtered.map((p) => provider.getChildren(p)))).flat()
      .map((n) => (n.kind === "session" ? n.row.sessionId : ""));
    expect(ids).toEqual([target.sessionId]);
    provider2.setTag(null);
  });

  it("updates the status bar from a push after an append, and warns once per block", async () => {
    // A tiny limit so the new block is far past the critical threshold.
    changeSettings(state, { "tokmon.tokenLimit": 1000 });
    const item = state.statusItems.find((i) => i.id === "tokmon.status")!;
    fs.appendFileSync(target.file, assistantLine(target.sessionId, target.cwd, 1500, 500));
    const text = await until("block in the status bar", () => item.text.includes("left") && item.text);
    expect(text).toMatch(/^\$\(pulse\) 2.00k · [0-9]h[0-9]{2}m left · ~200%$/); // the shared rule (tests/fixtures/format_cases.json)
    expect(item.backgroundColor?.id).toBe("statusBarItem.errorBackground");
    await until("threshold message", () => state.messages.length > 0);
    expect(state.messages).toHaveLength(1);
    expect(state.messages[0]!.level).toBe("error");
    expect(state.messages[0]!.text).toContain("200% of the limit (estimated), above your critical threshold");
    // a second push in the same block does not notify again
    fs.appendFileSync(target.file, assistantLine(target.sessionId, target.cwd, 100, 100));
    await until("second push", () => item.text.includes("2.20k") && item.text);
    expect(state.messages).toHaveLength(1);
  });

  it("shows the weekly window in the tooltip and each limit alert once", async () => {
    const python = state.pythonPath!;
    const env = { ...process.env };
    // alert at 50 % of an official window only; no desktop channel in a test
    const cfgPath = execFileSync(python, ["-m", "tokmon", "config", "path"], { env }).toString().trim();
    fs.mkdirSync(path.dirname(cfgPath), { recursive: true });
    fs.appendFileSync(
      cfgPath,
      "\n[alerts]\nofficial = [50]\nprojected = []\nblock = []\nbudgets = []\ndesktop = false\n",
    );
    const resetsAt = Math.round(Date.now() / 1000 + 4 * 86400);
    const record = (week: number): void => {
      const payload = {
        session_id: "bundle-limits",
        rate_limits: {
          five_hour: { used_percentage: 12, resets_at: Math.round(Date.now() / 1000 + 3600) },
          seven_day: { used_percentage: week, resets_at: resetsAt },
        },
      };
      const r = spawnSync(python, ["-m", "tokmon", "line", "--claude"], {
        env,
        input: JSON.stringify(payload),
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(r.status, r.stderr).toBe(0);
    };
    const item = state.statusItems.find((i) => i.id === "tokmon.status")!;
    const tip = (): string => (item.tooltip as { value: string }).value;
    const alerts = (): typeof state.messages => state.messages.filter((m) => m.text.includes("7-day limit is at"));
    record(58);
    await until("weekly window in the tooltip", () => tip().includes("**Claude 7\\-day** 58%"));
    expect(tip()).toMatch(/58% · pace \d\.\d\dx/);
    expect(tip()).toContain("History (7 d) `");
    await until("alert notification", () => alerts().length > 0);
    expect(alerts()).toHaveLength(1);
    expect(alerts()[0]!.level).toBe("warning");
    expect(alerts()[0]!.text.startsWith("tokmon: ")).toBe(true);
    // a new figure updates the tooltip; the crossing of 50 % is not notified again
    record(63);
    await until("new figure", () => tip().includes("**Claude 7\\-day** 63%"));
    expect(alerts()).toHaveLength(1);
  });

  it("stops the server on deactivate", async () => {
    await ext.deactivate();
    expect(state.contextKeys.get("tokmon.serverState")).toBe("stopped");
  });
});
