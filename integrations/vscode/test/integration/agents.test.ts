/**
 * The sidebar's agent grouping and the tooltip's per-agent rows against the real Python server
 * (`python -m tokmon serve`) on temp copies of the Claude, Codex and Amp corpora.
 *
 * Expected token totals: the agents corpus README (Amp) and docs/agents/README.md (Codex, an
 * independent recount); the Claude total is the server's own Claude-only `totals`.
 */

import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createMessageConnection,
  type MessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
} from "vscode-jsonrpc/node";

import { TokmonApi } from "../../src/protocol";
import { buildStatusView } from "../../src/statusModel";
import { DEFAULT_THRESHOLDS } from "../../src/thresholds";
import { childrenOf, rootNodes, TREE_QUERY, viewOf } from "../../src/treeModel";
import { AGENTS, CORPUS, corporaPresent, PYTHON, tokmonEnv } from "./harness";

const CODEX_TOTAL = 71_217_150;
const AMP_TOTAL = 114_201;

const available = corporaPresent(CORPUS, path.join(AGENTS, "codex"));

describe.skipIf(!available)("sessions grouped by agent, from the real server", () => {
  let tmp: string;
  let proc: ChildProcess;
  let conn: MessageConnection;
  let api: TokmonApi;
  let stderr = "";

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tokmon-vscode-agents-"));
    for (const [src, dst] of [
      [CORPUS, "claude"],
      [path.join(AGENTS, "codex"), "codex"],
      [path.join(AGENTS, "amp"), "amp"],
    ] as const) {
      fs.cpSync(src, path.join(tmp, dst), { recursive: true });
    }
    const home = path.join(tmp, "home");
    fs.mkdirSync(home);
    const env = tokmonEnv(home, {
      TOKMON_HOME: path.join(tmp, "tokmon"),
      CLAUDE_CONFIG_DIR: path.join(tmp, "claude"),
      CODEX_HOME: path.join(tmp, "codex"),
      AMP_DATA_DIR: path.join(tmp, "amp"),
    });
    proc = spawn(PYTHON, ["-m", "tokmon", "serve"], { cwd: tmp, env, stdio: ["pipe", "pipe", "pipe"] });
    proc.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    if (!proc.stdout || !proc.stdin) {
      throw new Error("no stdio pipes");
    }
    conn = createMessageConnection(new StreamMessageReader(proc.stdout), new StreamMessageWriter(proc.stdin));
    conn.listen();
    await conn.sendRequest("initialize", { processId: process.pid, rootUri: null, capabilities: {} });
    await conn.sendNotification("initialized", {});
    api = new TokmonApi(conn);
  });

  afterAll(async () => {
    try {
      await conn.sendRequest("shutdown");
      await conn.sendNotification("exit");
    } catch {
      // the process may be gone already
    }
    await new Promise((r) => setTimeout(r, 200));
    if (proc.exitCode === null) {
      proc.kill();
    }
    conn.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("puts the agents on top, each holding exactly its sessions' tokens", async () => {
    const [result, summary] = await Promise.all([api.sessions({ ...TREE_QUERY }), api.summary()]);
    expect(stderr).not.toContain("Traceback");
    const top = rootNodes(result.sessions);
    const agents = top.map((n) => (n.kind === "agent" ? n.group : null));
    expect(agents.every((g) => g !== null)).toBe(true);
    expect(agents.map((g) => g?.agent)).toEqual(["claude", ...agents.slice(1).map((g) => g?.agent)]);
    expect(new Set(agents.map((g) => g?.agent))).toEqual(new Set(["claude", "codex", "amp"]));
    const tokens: Record<string, number> = {};
    for (const g of agents) {
      if (g) {
        tokens[g.agent] = g.totalTokens;
      }
    }
    expect(tokens).toEqual({ claude: summary.totals.totalTokens, codex: CODEX_TOTAL, amp: AMP_TOTAL });
    // the server's per-agent totals agree with the tree
    for (const [name, t] of Object.entries(summary.agents ?? {})) {
      expect(t.totals.totalTokens).toBe(tokens[name]);
    }
    // under an agent: its projects, then its sessions; node ids unique over the whole tree
    const ids = new Set<string>();
    for (const node of top) {
      for (const project of childrenOf(node, { groups: [] })) {
        const id = viewOf(project, Date.now()).id;
        expect(ids.has(id)).toBe(false);
        ids.add(id);
        for (const s of childrenOf(project, { groups: [] })) {
          expect(s.kind === "session" && (s.row.agent ?? "claude")).toBe(node.kind === "agent" && node.group.agent);
        }
      }
    }
    const md = buildStatusView(summary, { format: "tokens", thresholds: DEFAULT_THRESHOLDS, tokenLimit: 0 }, Date.now()).tooltip;
    for (const name of ["claude", "codex", "amp"]) {
      expect(md).toContain(`| Today · ${name} |`);
    }
  });
});
