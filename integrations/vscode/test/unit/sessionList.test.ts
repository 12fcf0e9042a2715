import { describe, expect, it } from "vitest";

import type { SessionRow, Summary, UsageChangedParams } from "../../src/protocol";
import { SessionList } from "../../src/sessionList";
import { row, summary } from "./fixtures";

const a = row({ sessionId: "a", lastActivity: "2026-01-16T03:00:00.000Z", totalTokens: 10 });
const b = row({ sessionId: "b", lastActivity: "2026-01-16T02:00:00.000Z", totalTokens: 20 });
const c = row({ sessionId: "c", lastActivity: "2026-01-16T01:00:00.000Z", totalTokens: 30 });

function push(seq: number | undefined, sessions: SessionRow[] | undefined, removed: string[] = []): UsageChangedParams {
  const s: Summary = summary();
  const changed = [...(sessions ?? []).map((r) => r.sessionId), ...removed].sort();
  return { summary: s, changedSessions: changed, seq, sessions, removedSessions: removed };
}

/** A list loaded from an answer with this seq (null: an older server's answer, no seq). */
function loaded(seq: number | null, rows: SessionRow[] = [a, b, c]): SessionList {
  const list = new SessionList();
  list.beginLoad();
  const answer = { sessions: rows.map((r) => ({ ...r })), workspaceProject: null };
  expect(list.loaded(seq === null ? answer : { ...answer, seq })).toBe("applied");
  return list;
}

const ids = (list: SessionList): string[] => (list.rows ?? []).map((r) => r.sessionId);

describe("SessionList", () => {
  it("upserts the next push's rows: an existing one updated and moved, a new one added", () => {
    const list = loaded(5);
    const c2 = { ...c, lastActivity: "2026-01-16T04:00:00.000Z", totalTokens: 31 };
    const d = row({ sessionId: "d", lastActivity: "2026-01-16T02:30:00.000Z", totalTokens: 1 });
    expect(list.apply(push(6, [c2, d]))).toBe("applied");
    expect(ids(list)).toEqual(["c", "a", "d", "b"]); // newest first
    expect(list.rows?.find((r) => r.sessionId === "c")?.totalTokens).toBe(31);
    expect(list.seq).toBe(6);
  });

  it("keeps ties in id order, as the server sorts them", () => {
    const list = loaded(1);
    const x = row({ sessionId: "x", lastActivity: b.lastActivity });
    const a2 = { ...a, lastActivity: b.lastActivity };
    expect(list.apply(push(2, [x, a2]))).toBe("applied");
    expect(ids(list)).toEqual(["a", "b", "x", "c"]);
  });

  it("drops removed sessions", () => {
    const list = loaded(3);
    expect(list.apply(push(4, [], ["b"]))).toBe("applied");
    expect(ids(list)).toEqual(["a", "c"]);
  });

  it("asks for a full reload when a push was missed (a gap in seq)", () => {
    const list = loaded(5);
    expect(list.apply(push(7, [{ ...a, totalTokens: 99 }]))).toBe("reload");
    expect(list.rows).toBeUndefined();
    expect(list.seq).toBeUndefined();
  });

  it("ignores a push the rows already include", () => {
    const list = loaded(5);
    expect(list.apply(push(5, [{ ...a, totalTokens: 99 }]))).toBe("ignored");
    expect(list.apply(push(2, [{ ...a, totalTokens: 98 }]))).toBe("ignored");
    expect(list.rows?.find((r) => r.sessionId === "a")?.totalTokens).toBe(10);
  });

  it("reloads on every push of an older server (no rows, no seq)", () => {
    const old = loaded(null);
    expect(old.apply(push(undefined, undefined))).toBe("reload");
    const noSeqAnswer = loaded(null);
    expect(noSeqAnswer.apply(push(1, [a]))).toBe("reload");
  });

  it("queues pushes that arrive while the list loads and applies the newer ones in order", () => {
    const list = new SessionList();
    list.beginLoad();
    const a2 = { ...a, totalTokens: 11 };
    const a3 = { ...a, totalTokens: 12, lastActivity: "2026-01-16T05:00:00.000Z" };
    expect(list.apply(push(5, [a2]))).toBe("queued"); // already in the answer (seq 5)
    expect(list.apply(push(6, [a3]))).toBe("queued");
    expect(list.loaded({ sessions: [{ ...a2 }, b, c], workspaceProject: null, seq: 5 })).toBe("applied");
    expect(list.seq).toBe(6);
    expect(list.rows?.[0]?.totalTokens).toBe(12);
  });

  it("a queued push that skips one makes the answer reload", () => {
    const list = new SessionList();
    list.beginLoad();
    list.apply(push(8, [a]));
    expect(list.loaded({ sessions: [a, b], workspaceProject: null, seq: 6 })).toBe("reload");
    expect(list.rows).toBeUndefined();
  });

  it("ignores pushes before anything was loaded", () => {
    const list = new SessionList();
    expect(list.apply(push(1, [a]))).toBe("ignored");
    expect(list.rows).toBeUndefined();
  });

  it("updates a row in place (metadata edits)", () => {
    const list = loaded(1);
    const got = list.update({ sessionId: "b", name: "named", tags: ["t"] });
    expect(got?.name).toBe("named");
    expect(list.rows?.find((r) => r.sessionId === "b")?.tags).toEqual(["t"]);
    expect(list.update({ sessionId: "zzz", name: "x" })).toBeUndefined();
  });
});
