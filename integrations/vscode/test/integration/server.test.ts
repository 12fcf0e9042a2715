/**
 * The real Python server, spawned from Node and driven through vscode-jsonrpc with the
 * extension's own protocol module (method names, types, TokmonApi) and its pure models.
 *
 * Works on a temp copy of the real corpus; TOKMON_HOME and HOME are temp dirs too.
 */

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createMessageConnection,
  type MessageConnection,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
} from "vscode-jsonrpc/node";

import { discoverServer, nodeHost } from "../../src/discovery";
import { limitsTooltipLines, weeklyWindow } from "../../src/limitsModel";
import {
  CLIENT_CAPABILITIES,
  type LimitsStatus,
  type MetadataChangedParams,
  Methods,
  type SessionRow,
  type SessionsResult,
  Notifications,
  type Summary,
  TokmonApi,
  type UsageChangedParams,
  versionProblem,
} from "../../src/protocol";
import { type PushOutcome, SessionList } from "../../src/sessionList";
import { buildStatusView } from "../../src/statusModel";
import { DEFAULT_THRESHOLDS } from "../../src/thresholds";
import {
  childrenOf,
  groupSessions,
  TREE_QUERY,
  type TreeNode,
  viewOf,
} from "../../src/treeModel";
import { CORPUS, corporaPresent, PYTHON, tokmonEnv } from "./harness";


/** Main (non-subagent) transcripts of a Claude root: projects/<dir>/<session>.jsonl. */
function mainTranscripts(root: string): string[] {
  const projects = path.join(root, "projects");
  const out: string[] = [];
  for (const dir of fs.readdirSync(projects).sort()) {
    const full = path.join(projects, dir);
    if (!fs.statSync(full).isDirectory()) {
      continue;
    }
    for (const f of fs.readdirSync(full).sort()) {
      if (f.endsWith(".jsonl") && !f.startsWith("agent-")) {
        out.push(path.join(full, f));
      }
    }
  }
  return out;
}

/** (sessionId, cwd) of the first main-chain line carrying both. */
function sessionOf(file: string): { sessionId: string; cwd: string } {
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    let obj: { sessionId?: unknown; cwd?: unknown; isSidechain?: unknown };
    try {
      obj = JSON.parse(line) as typeof obj;
    } catch {
      continue;
    }
    if (typeof obj.sessionId === "string" && typeof obj.cwd === "string" && !obj.isSidechain) {
      return { sessionId: obj.sessionId, cwd: obj.cwd };
    }
  }
  throw new Error(`no session line in ${file}`);
}

/** Every sessionId carried by an assistant line with usage, in any transcript (agents too). */
function corpusSessionIds(root: string): Set<string> {
  const ids = new Set<string>();
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) {
        walk(full);
      } else if (e.name.endsWith(".jsonl")) {
        for (const line of fs.readFileSync(full, "utf8").split("\n")) {
          let obj: { type?: unknown; sessionId?: unknown; message?: { usage?: unknown } };
          try {
            obj = JSON.parse(line) as typeof obj;
          } catch {
            continue;
          }
          if (obj.type === "assistant" && obj.message?.usage && typeof obj.sessionId === "string") {
            ids.add(obj.sessionId);
          }
        }
      }
    }
  };
  walk(path.join(root, "projects"));
  return ids;
}

let seq = 0;
/** One Claude Code assistant line with fresh message and request ids and the current time. */
function assistantLine(
  sessionId: string,
  cwd: string,
  input: number,
  output: number,
  at: Date = new Date(),
): string {
  const n = `${process.pid}${seq++}${Date.now()}`;
  return (
    JSON.stringify({
      parentUuid: null,
      isSidechain: false,
      userType: "external",
      cwd,
      sessionId,
      version: "2.1.7",
      type: "assistant",
      uuid: `u-vscode-${n}`,
      timestamp: at.toISOString(),
      requestId: `req_vscode${n}`,
      message: {
        id: `msg_vscode${n}`,
        type: "message",
        role: "assistant",
        model: "claude-sonnet-4-5-20250929",
        content: [{ type: "text", text: "ok" }],
        usage: {
          input_tokens: input,
          cache_creation_input_tokens: 0,
          cache_read_input_tokens: 0,
          output_tokens: output,
        },
      },
    }) + "\n"
  );
}

/** Resolve with the first notification (from now on) that satisfies `pred`. */
function waitFor<T>(
  conn: MessageConnection,
  method: string,
  pred: (p: T) => boolean,
  timeoutMs: number,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const seen: T[] = [];
    const timer = setTimeout(() => {
      sub.dispose();
      reject(new Error(`no matching ${method} within ${timeoutMs} ms (${seen.length} others)`));
    }, timeoutMs);
    const sub = conn.onNotification(method, (p: T) => {
      if (pred(p)) {
        clearTimeout(timer);
        sub.dispose();
        resolve(p);
      } else {
        seen.push(p);
      }
    });
  });
}

describe.skipIf(!corporaPresent(CORPUS))("tokmon serve driven through the extension's protocol module", () => {
  let tmp: string;
  let claudeDir: string;
  let proc: ChildProcess;
  let conn: MessageConnection;
  let api: TokmonApi;
  let stderr = "";
  let target: { file: string; sessionId: string; cwd: string };
  let exitCode: Promise<number | null>;
  let serverEnv: NodeJS.ProcessEnv;
  let python: string;

  beforeAll(async () => {
    expect(fs.existsSync(CORPUS), `test corpus missing: ${CORPUS}`).toBe(true);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tokmon-vscode-it-"));
    claudeDir = path.join(tmp, "claude");
    fs.cpSync(CORPUS, claudeDir, { recursive: true });
    const home = path.join(tmp, "home");
    fs.mkdirSync(home);
    const file = mainTranscripts(claudeDir)[0];
    if (!file) {
      throw new Error("the corpus holds no transcript");
    }
    target = { file, ...sessionOf(file) };

    const env = tokmonEnv(home, { TOKMON_HOME: path.join(tmp, "tokmon"), CLAUDE_CONFIG_DIR: claudeDir });
    // Start the server the way the extension does: no tokmon on PATH, so discovery falls back
    // to the (Python extension's) interpreter with `-m tokmon serve`.
    const emptyBin = path.join(tmp, "empty-bin");
    fs.mkdirSync(emptyBin);
    const found = await discoverServer(undefined, PYTHON, { ...nodeHost(), env: { PATH: emptyBin } });
    if (!found.ok) {
      throw new Error(found.message);
    }
    expect(found.server.source).toBe("python");
    expect(found.server.args.slice(-2)).toEqual(["tokmon", "serve"]);
    expect(found.server.cwd).toBe(path.parse(tmp).root);
    serverEnv = env;
    python = found.server.command;
    proc = spawn(found.server.command, found.server.args, {
      cwd: tmp,
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    proc.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    exitCode = new Promise((resolve) => proc.on("exit", (code) => resolve(code)));
    if (!proc.stdout || !proc.stdin) {
      throw new Error("no stdio pipes");
    }
    conn = createMessageConnection(
      new StreamMessageReader(proc.stdout),
      new StreamMessageWriter(proc.stdin),
    );
    conn.listen();
    const folder = pathToFileURL(target.cwd).toString();
    const init = await conn.sendRequest<{ serverInfo?: { name: string } }>("initialize", {
      processId: process.pid,
      rootUri: folder,
      capabilities: {},
      workspaceFolders: [{ uri: folder, name: path.basename(target.cwd) }],
      // as the extension asks: pushes without the summary's whole active list
      initializationOptions: { capabilities: CLIENT_CAPABILITIES },
    });
    expect(init.serverInfo?.name).toBe("tokmon");
    await conn.sendNotification("initialized", {});
    api = new TokmonApi(conn);
  });

  afterAll(async () => {
    if (conn) {
      try {
        await conn.sendRequest("shutdown");
        await conn.sendNotification("exit");
      } catch {
        // the process may be gone already
      }
    }
    const code = await Promise.race([
      exitCode,
      new Promise<string>((r) => setTimeout(() => r("timeout"), 5000)),
    ]);
    if (code === "timeout") {
      proc.kill();
    }
    conn?.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
    expect(code, `server stderr:\n${stderr}`).toBe(0);
  });

  it("reports a protocol version the extension accepts", async () => {
    const v = await api.version();
    expect(versionProblem(v)).toBeNull();
    expect(v.protocol).toBeGreaterThanOrEqual(1);
  });

  it("lists the corpus sessions and groups this workspace's project first", async () => {
    const [result, summary] = await Promise.all([api.sessions({ ...TREE_QUERY }), api.summary()]);
    // one row per session id that has usage in the corpus, each listed once
    const ids = result.sessions.map((s) => s.sessionId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(ids)).toEqual(corpusSessionIds(claudeDir));
    expect(ids).toContain(target.sessionId);
    for (const s of result.sessions) {
      expect(Array.isArray(s.tags)).toBe(true);
      expect(s.totalTokens).toBe(
        s.inputTokens + s.outputTokens + s.cacheCreationTokens + s.cacheReadTokens,
      );
    }
    // the server knows the workspace folder from `initialize`
    expect(result.workspaceProject).toBe(target.cwd);
    const groups = groupSessions(result.sessions, {
      workspaceProject: result.workspaceProject,
      workspaceFolders: [target.cwd],
    });
    expect(groups[0]?.projectPath).toBe(target.cwd);
    expect(groups[0]?.isWorkspace).toBe(true);
    expect(groups.filter((g) => g.isWorkspace).length).toBe(1);
    // the tree holds every token of every session: its sum is the summary's all-time total
    const treeTokens = groups.reduce((n, g) => n + g.totalTokens, 0);
    expect(treeTokens).toBe(summary.totals.totalTokens);
    const roots = childrenOf(undefined, { groups });
    expect(roots.length).toBe(new Set(result.sessions.map((s) => s.projectPath)).size);
    expect(roots.length).toBeGreaterThan(1); // every project, not only the workspace's
    // newest first, as the tree query asks
    const times = result.sessions.map((s) => Date.parse(s.lastActivity));
    expect(times).toEqual([...times].sort((a, b) => b - a));
  });

  it("gives session detail for the tree's model and block children", async () => {
    const detail = await api.session(target.sessionId.slice(0, 13));
    expect(detail.sessionId).toBe(target.sessionId);
    expect(detail.models.length).toBeGreaterThan(0);
    expect(detail.models.reduce((n, m) => n + m.totalTokens, 0)).toBe(detail.totalTokens);
    const row = { kind: "session", row: detail } as const satisfies TreeNode;
    const [modelsNode, blocksNode] = childrenOf(row, { groups: [] });
    const data = { groups: [], detail: () => detail };
    const models = childrenOf(modelsNode, data);
    expect(models.map((n) => n.kind)).toEqual(detail.models.map(() => "model"));
    const blocks = childrenOf(blocksNode, data);
    expect(blocks.length).toBe(detail.blocks.filter((b) => !b.isGap).length);
    expect(blocks.length).toBeGreaterThan(0);
    expect(viewOf(blocks[0] as TreeNode, Date.now()).label).toBeTruthy();
  });

  it("rejects an unknown session id with invalid params", async () => {
    const err = await api.session("zzzz-not-a-session").then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ResponseError);
    expect((err as ResponseError<unknown>).code).toBe(-32602);
    expect((err as ResponseError<unknown>).message).toContain("zzzz-not-a-session");
  });

  it("sets a tag, name and description and sees them come back", async () => {
    const changed = waitFor<MetadataChangedParams>(
      conn,
      Notifications.metadataChanged,
      (p) => p.sessionId === target.sessionId && p.tags.includes("vscode-it"),
      10_000,
    );
    const updated = await api.setSessionMetadata({
      sessionId: target.sessionId,
      addTags: ["VSCode-IT"],
      name: "from the vscode test",
      description: "set through vscode-jsonrpc",
    });
    expect(updated.sessionId).toBe(target.sessionId);
    expect(updated.tags).toContain("vscode-it"); // tags are normalised to lower case
    const note = await changed;
    expect(note.name).toBe("from the vscode test");

    const tagged = await api.sessions({ tag: "vscode-it" });
    expect(tagged.sessions.map((s) => s.sessionId)).toEqual([target.sessionId]);
    const row = tagged.sessions[0];
    expect(row?.name).toBe("from the vscode test");
    expect(row?.description).toBe("set through vscode-jsonrpc");
    // the tree shows the user's name and the filter keeps only the tagged session
    const all = await api.sessions();
    const groups = groupSessions(all.sessions, { tag: "vscode-it" });
    expect(groups.flatMap((g) => g.sessions.map((s) => s.sessionId))).toEqual([target.sessionId]);
    const node = { kind: "session", row: row! } as const;
    expect(viewOf(node, Date.now()).label).toBe("from the vscode test");

    // the executeCommand alias removes nothing and adds another tag
    const viaCommand = await conn.sendRequest<{ tags: string[] }>("workspace/executeCommand", {
      command: "tokmon.tagSession",
      arguments: [target.sessionId, "second"],
    });
    expect(viaCommand.tags).toEqual(["second", "vscode-it"]);
  });

  it("pushes tokmon/usageChanged with exactly the appended tokens after a transcript append", async () => {
    const before: Summary = await api.summary();
    const input = 1234;
    const output = 4321;
    const pushed = waitFor<UsageChangedParams>(
      conn,
      Notifications.usageChanged,
      (p) => p.summary.totals.inputTokens === before.totals.inputTokens + input,
      15_000,
    );
    const t0 = Date.now();
    fs.appendFileSync(target.file, assistantLine(target.sessionId, target.cwd, input, output));
    const note = await pushed;
    const latency = Date.now() - t0;
    console.log(`append -> ${Notifications.usageChanged}: ${latency} ms`);
    expect(note.changedSessions).toEqual([target.sessionId]);
    const t = note.summary.totals;
    expect(t.outputTokens).toBe(before.totals.outputTokens + output);
    expect(t.cacheReadTokens).toBe(before.totals.cacheReadTokens);
    expect(t.cacheCreationTokens).toBe(before.totals.cacheCreationTokens);
    expect(t.totalTokens).toBe(before.totals.totalTokens + input + output);
    // the append is now: an active block exists and the status bar shows it
    const block = note.summary.activeBlock;
    expect(block).not.toBeNull();
    expect(block!.totalTokens).toBeGreaterThanOrEqual(input + output);
    const view = buildStatusView(
      note.summary,
      { format: "tokens", thresholds: DEFAULT_THRESHOLDS, tokenLimit: 0 },
      Date.now(),
    );
    expect(view.text).toMatch(/left/);
    // the pushed workspace session is the one we appended to (the server's default folder)
    expect(note.summary.workspaceSession?.sessionId).toBe(target.sessionId);
    // a request after the push agrees with it
    const after = await conn.sendRequest<Summary>(Methods.summary, {});
    expect(after.totals.inputTokens).toBe(before.totals.inputTokens + input);
  });

  it("keeps the sidebar's list current from the pushes' rows, without re-fetching it", async () => {
    // the extension's own list model over a sender that counts tokmon/sessions requests
    let listRequests = 0;
    const counting = new TokmonApi({
      sendRequest<R>(method: string, params?: unknown): Promise<R> {
        if (method === Methods.sessions) {
          listRequests += 1;
        }
        return conn.sendRequest<R>(method, params);
      },
    });
    const list = new SessionList();
    const pushes: UsageChangedParams[] = [];
    const outcomes: PushOutcome[] = [];
    let dropNext = false;
    const sub = conn.onNotification(Notifications.usageChanged, (p: UsageChangedParams) => {
      pushes.push(p);
      if (dropNext) {
        dropNext = false; // a push this client missed
        return;
      }
      outcomes.push(list.apply(p));
    });
    const until = async (cond: () => boolean, what: string): Promise<void> => {
      const deadline = Date.now() + 30_000;
      while (!cond()) {
        if (Date.now() > deadline) {
          throw new Error(`timed out waiting for ${what}; ${stderr.slice(-1000)}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const rowOf = (id: string): SessionRow | undefined => list.rows?.find((r) => r.sessionId === id);
    const fresh = async (): Promise<SessionRow[]> =>
      (await conn.sendRequest<SessionsResult>(Methods.sessions, { ...TREE_QUERY })).sessions;
    try {
      list.beginLoad();
      expect(list.loaded(await counting.sessions({ ...TREE_QUERY }))).toBe("applied");
      expect(typeof list.seq).toBe("number");
      const before = rowOf(target.sessionId)!;
      // one line in the target session, and a session that did not exist
      const newId = "0e0e0e0e-1111-4222-8333-444455556666";
      const newFile = path.join(claudeDir, "projects", "-tmp-vscode-new", `${newId}.jsonl`);
      fs.mkdirSync(path.dirname(newFile), { recursive: true });
      fs.appendFileSync(target.file, assistantLine(target.sessionId, target.cwd, 111, 222));
      fs.appendFileSync(newFile, assistantLine(newId, "/tmp/vscode-new", 5, 6));
      await until(
        () => rowOf(newId) !== undefined && rowOf(target.sessionId)!.entries === before.entries + 1,
        "the pushed rows in the list",
      );
      expect(outcomes.every((o) => o === "applied")).toBe(true);
      expect(listRequests).toBe(1); // no re-fetch of the whole list
      expect(rowOf(target.sessionId)!.inputTokens).toBe(before.inputTokens + 111);
      expect(rowOf(target.sessionId)!.name).toBe(before.name); // metadata kept in the rows
      expect(rowOf(newId)!.totalTokens).toBe(11);
      // the list equals a fresh answer, row for row and in order
      expect(list.rows).toEqual(await fresh());
      // a missed push: the next one shows a gap in seq and the list is loaded again
      const seen = pushes.length;
      dropNext = true;
      fs.appendFileSync(target.file, assistantLine(target.sessionId, target.cwd, 1, 1));
      await until(() => pushes.length > seen, "the push this client drops");
      fs.appendFileSync(newFile, assistantLine(newId, "/tmp/vscode-new", 2, 2));
      await until(() => outcomes.length > 0 && outcomes[outcomes.length - 1] === "reload", "a gap");
      expect(list.rows).toBeUndefined();
      list.beginLoad();
      expect(list.loaded(await counting.sessions({ ...TREE_QUERY }))).toBe("applied");
      expect(listRequests).toBe(2);
      expect(list.seq).toBe(pushes[pushes.length - 1]!.seq);
      expect(rowOf(newId)!.totalTokens).toBe(15);
      expect(list.rows).toEqual(await fresh());
    } finally {
      sub.dispose();
    }
  });

  it("marks the sidebar's active sessions from the pushes, and one leaves by the clock", async () => {
    // A line in the target session and one dated 5 h minus 8 s ago in a new session: both
    // join the active set; the new one leaves it 8 s later with no new line. The sidebar's
    // list follows from the pushed rows alone, its active marks equal to a fresh summary's
    // list, and no push carries that list (the client asked for active deltas).
    let listRequests = 0;
    const counting = new TokmonApi({
      sendRequest<R>(method: string, params?: unknown): Promise<R> {
        if (method === Methods.sessions) {
          listRequests += 1;
        }
        return conn.sendRequest<R>(method, params);
      },
    });
    const list = new SessionList();
    const pushes: UsageChangedParams[] = [];
    const sub = conn.onNotification(Notifications.usageChanged, (p: UsageChangedParams) => {
      pushes.push(p);
      expect(list.apply(p)).not.toBe("reload");
    });
    const until = async (cond: () => boolean, what: string, ms = 30_000): Promise<void> => {
      const deadline = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > deadline) {
          throw new Error(`timed out waiting for ${what}; ${stderr.slice(-1000)}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const rowOf = (id: string): SessionRow | undefined => list.rows?.find((r) => r.sessionId === id);
    const marked = (): string[] =>
      (list.rows ?? [])
        .filter((r) => r.isActive && (r.agent ?? "claude") === "claude")
        .map((r) => r.sessionId)
        .sort();
    const pulled = async (): Promise<string[]> =>
      ((await api.summary()).activeSessions ?? []).map((r) => r.sessionId).sort();
    try {
      list.beginLoad();
      expect(list.loaded(await counting.sessions({ ...TREE_QUERY }))).toBe("applied");
      expect(marked()).toEqual(await pulled());
      const brief = "0d0d0d0d-1111-4222-8333-444455556666";
      const briefFile = path.join(claudeDir, "projects", "-tmp-vscode-brief", `${brief}.jsonl`);
      fs.mkdirSync(path.dirname(briefFile), { recursive: true });
      const entries = rowOf(target.sessionId)!.entries;
      fs.appendFileSync(target.file, assistantLine(target.sessionId, target.cwd, 3, 4));
      const at = new Date(Date.now() - 5 * 3600 * 1000 + 8000);
      fs.appendFileSync(briefFile, assistantLine(brief, "/tmp/vscode-brief", 5, 6, at));
      await until(
        () => rowOf(brief)?.isActive === true && rowOf(target.sessionId)!.entries === entries + 1,
        "both sessions active in the list",
      );
      expect(marked()).toContain(brief);
      expect(marked()).toContain(target.sessionId);
      expect(marked()).toEqual(await pulled());
      // then the brief one leaves the active set: a push of its row, no line written
      await until(() => rowOf(brief)?.isActive === false, "the brief session no longer active", 60_000);
      const last = pushes[pushes.length - 1]!;
      expect(last.changedSessions).toEqual([]);
      expect(last.activeIds).toEqual([]);
      expect(last.sessions?.map((r) => r.sessionId)).toEqual([brief]);
      expect(marked()).not.toContain(brief);
      expect(marked()).toEqual(await pulled());
      expect(listRequests).toBe(1);
      for (const p of pushes) {
        expect(p.summary.activeSessions).toBeUndefined();
      }
    } finally {
      sub.dispose();
    }
  });

  it("pushes tokmon/limitsChanged after Claude Code's statusLine records a new figure", async () => {
    const nowSec = Date.now() / 1000;
    const resetsAt = Math.round(nowSec + 4 * 86400); // the week opened 3 days ago
    const week = 58;
    const opus = 9;
    const pushed = waitFor<LimitsStatus>(
      conn,
      Notifications.limitsChanged,
      (p) => p.windows.some((w) => w.window === "seven_day" && w.usedPercent === week),
      20_000,
    );
    // the real statusLine command, as Claude Code runs it (payload on stdin)
    const payload = {
      session_id: "vscode-it-limits",
      rate_limits: {
        five_hour: { used_percentage: 23, resets_at: Math.round(nowSec + 3600) },
        seven_day: { used_percentage: week, resets_at: resetsAt },
        seven_day_opus: { used_percentage: opus, resets_at: resetsAt },
      },
    };
    const line = spawnSync(python, ["-m", "tokmon", "line", "--claude"], {
      env: serverEnv,
      input: JSON.stringify(payload),
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(line.status, line.stderr).toBe(0);
    const note = await pushed;
    const w = weeklyWindow(note);
    expect(w?.label).toBe("Claude 7-day");
    expect(w?.basis).toBe("official");
    expect(w?.resetsAt).toBe(resetsAt);
    // pace against an independent computation: 58% after 3 of 7 days
    const elapsedPct = ((w!.observedAt - (resetsAt - 7 * 86400)) / (7 * 86400)) * 100;
    expect(w!.pace).toBeCloseTo(week / elapsedPct, 6);
    expect(w!.projectedPercent).toBeCloseTo((week * 100) / elapsedPct, 6);
    expect(w!.history?.at(-1)?.[1]).toBe(week);
    expect(note.windows.find((x) => x.window === "seven_day_opus")?.usedPercent).toBe(opus);
    // the request answers the same status
    const asked = await api.limits();
    expect(weeklyWindow(asked)?.usedPercent).toBe(week);
    expect(weeklyWindow(asked)?.pace).toBe(w!.pace);
    // and the tooltip shows it
    const lines = limitsTooltipLines(note, Date.now(), "UTC");
    expect(lines[0]).toContain(`**Claude 7\\-day** ${week}% · pace ${w!.pace!.toFixed(2)}x`);
    expect(lines.some((l) => l.startsWith("History (7 d) `"))).toBe(true);
    expect(lines.some((l) => l.startsWith(`Claude 7\\-day opus ${opus}%`))).toBe(true);
    const summary = await api.summary();
    const view = buildStatusView(
      summary,
      { format: "tokens", thresholds: DEFAULT_THRESHOLDS, tokenLimit: 0 },
      Date.now(),
      note,
    );
    expect(view.tooltip).toContain(`${week}% · pace`);
    expect(view.tooltip).toContain(`_Times in ${summary.timezone ?? "UTC"}`);
  });
});
