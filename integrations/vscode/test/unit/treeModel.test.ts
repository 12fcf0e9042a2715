import { describe, expect, it } from "vitest";

import type { SessionDetail } from "../../src/protocol";
import {
  childrenOf,
  collectTags,
  groupSessions,
  isSameOrInside,
  parseTags,
  sessionLabel,
  viewOf,
} from "../../src/treeModel";
import { NOW, row } from "./fixtures";

const rows = [
  row({ sessionId: "a1", projectPath: "/p/alpha", projectName: "alpha", lastActivity: "2026-01-16T12:00:00.000Z", totalTokens: 10, totalCost: 1, tags: ["x"] }),
  row({ sessionId: "b1", projectPath: "/p/beta", projectName: "beta", lastActivity: "2026-01-16T12:20:00.000Z", totalTokens: 5, totalCost: 0.25 }),
  row({ sessionId: "a2", projectPath: "/p/alpha", projectName: "alpha", lastActivity: "2026-01-16T12:10:00.000Z", totalTokens: 20, totalCost: 2, tags: ["x", "y"] }),
  row({ sessionId: "c1", projectPath: "/p/gamma", projectName: "gamma", lastActivity: "2026-01-15T12:00:00.000Z", totalTokens: 1, totalCost: 0.01, tags: ["y"] }),
];

describe("groupSessions", () => {
  it("groups by project, newest project first, newest session first, with totals", () => {
    const groups = groupSessions(rows);
    expect(groups.map((g) => g.projectName)).toEqual(["beta", "alpha", "gamma"]);
    const alpha = groups[1]!;
    expect(alpha.sessions.map((s) => s.sessionId)).toEqual(["a2", "a1"]);
    expect(alpha.totalTokens).toBe(30);
    expect(alpha.totalCost).toBe(3);
    expect(alpha.lastActivity).toBe("2026-01-16T12:10:00.000Z");
  });

  it("puts this workspace's project first (server answer)", () => {
    const groups = groupSessions(rows, { workspaceProject: "/p/gamma" });
    expect(groups.map((g) => g.projectName)).toEqual(["gamma", "beta", "alpha"]);
    expect(groups[0]!.isWorkspace).toBe(true);
    expect(groups.slice(1).some((g) => g.isWorkspace)).toBe(false);
  });

  it("matches workspace folders when the server gave no project", () => {
    const groups = groupSessions(rows, { workspaceFolders: ["/p/alpha/"] });
    expect(groups[0]!.projectName).toBe("alpha");
    expect(groupSessions(rows, { workspaceFolders: ["/p/alp"] })[0]!.projectName).toBe("beta");
  });

  it("filters by tag", () => {
    const groups = groupSessions(rows, { tag: "y" });
    expect(groups.flatMap((g) => g.sessions.map((s) => s.sessionId))).toEqual(["a2", "c1"]);
  });

  it("collects tags with counts", () => {
    expect(collectTags(rows)).toEqual([{ tag: "x", count: 2 }, { tag: "y", count: 2 }]);
  });
});

describe("paths", () => {
  it("compares paths by components", () => {
    expect(isSameOrInside("/a/b/c", "/a/b")).toBe(true);
    expect(isSameOrInside("/a/bc", "/a/b")).toBe(false);
    expect(isSameOrInside("C:\\Work\\Proj", "c:/work", true)).toBe(true);
    expect(isSameOrInside("C:\\Work\\Proj", "c:/work", false)).toBe(false);
  });
});

describe("nodes", () => {
  it("labels sessions by name, then title, then short id", () => {
    expect(sessionLabel(row({ name: "N", title: "T" }))).toBe("N");
    expect(sessionLabel(row({ title: "T" }))).toBe("T");
    expect(sessionLabel(row({ sessionId: "0123456789abcdef" }))).toBe("01234567");
  });

  it("describes a session with tokens, cost, last activity, tags and description", () => {
    const v = viewOf({ kind: "session", row: row({ name: "Parser", tags: ["infra", "q1"], totalTokens: 1_500_000, totalCost: 3.456, lastActivity: "2026-01-16T12:00:00.000Z", description: "Rewrite the parser" }) }, NOW);
    expect(v.label).toBe("Parser");
    expect(v.description).toBe("1.50M · $3.46 · 30m ago · #infra #q1 · Rewrite the parser");
    expect(v.contextValue).toBe("tokmon.session");
    expect(v.tooltip).toContain("Rewrite the parser");
    expect(v.tooltip).toContain("1,500,000 tokens");
    const long = viewOf({ kind: "session", row: row({ description: `${"word ".repeat(30)}\nsecond line` }) }, NOW);
    const shown = long.description?.split(" · ").pop() ?? "";
    expect(shown).toBe(`${"word ".repeat(9)}wo…`); // 48 characters, one line
    expect(long.tooltip).toContain("second line");
  });

  it("gives sessions Models and Blocks children filled from the detail", () => {
    const session = row({ sessionId: "s1" });
    const kids = childrenOf({ kind: "session", row: session }, { groups: [] });
    expect(kids.map((k) => k.kind)).toEqual(["models", "blocks"]);
    const detail: SessionDetail = {
      ...session,
      models: [
        { modelName: "claude-haiku-4-5-20251001", inputTokens: 1, outputTokens: 1, cacheCreationTokens: 0, cacheReadTokens: 0, totalTokens: 2, cost: 0.1 },
        { modelName: "claude-opus-4-5-20251101", inputTokens: 1, outputTokens: 1, cacheCreationTokens: 0, cacheReadTokens: 0, totalTokens: 2, cost: 0.9 },
      ],
      blocks: [
        { id: "b1", startTime: "2026-01-15T10:00:00.000Z", endTime: "2026-01-15T15:00:00.000Z", actualEndTime: "2026-01-15T11:00:00.000Z", isActive: false, isGap: false, entries: 3, tokenCounts: { inputTokens: 1, outputTokens: 1, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 }, totalTokens: 2, costUSD: 0.1, models: [] },
        { id: "gap", startTime: "2026-01-15T15:00:00.000Z", endTime: "2026-01-16T10:00:00.000Z", actualEndTime: null, isActive: false, isGap: true, entries: 0, tokenCounts: { inputTokens: 0, outputTokens: 0, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 }, totalTokens: 0, costUSD: 0, models: [] },
        { id: "b2", startTime: "2026-01-16T10:00:00.000Z", endTime: "2026-01-16T15:00:00.000Z", actualEndTime: "2026-01-16T12:00:00.000Z", isActive: true, isGap: false, entries: 5, tokenCounts: { inputTokens: 1, outputTokens: 1, cacheCreationInputTokens: 0, cacheReadInputTokens: 0 }, totalTokens: 2, costUSD: 0.9, models: ["claude-opus-4-5-20251101"] },
      ],
      timeline: [],
    };
    const lookup = { groups: [], detail: (id: string) => (id === "s1" ? detail : undefined) };
    const models = childrenOf({ kind: "models", sessionId: "s1" }, lookup);
    expect(models.map((m) => (m.kind === "model" ? m.model.modelName : m.kind))).toEqual([
      "claude-opus-4-5-20251101",
      "claude-haiku-4-5-20251001",
    ]);
    const blocks = childrenOf({ kind: "blocks", sessionId: "s1" }, lookup);
    expect(blocks.map((b) => (b.kind === "block" ? b.block.id : b.kind))).toEqual(["b2", "b1"]);
    const active = viewOf(blocks[0]!, NOW);
    expect(active.label).toBe("2026-01-16 10:00");
    expect(active.description).toBe("2 · $0.90 · active");
    expect(childrenOf({ kind: "blocks", sessionId: "zz" }, lookup)[0]!.kind).toBe("message");
  });

  it("gives every node a unique id", () => {
    const groups = groupSessions(rows);
    const ids = new Set<string>();
    for (const p of childrenOf(undefined, { groups })) {
      ids.add(viewOf(p, NOW).id);
      for (const s of childrenOf(p, { groups })) {
        ids.add(viewOf(s, NOW).id);
        for (const c of childrenOf(s, { groups })) {
          ids.add(viewOf(c, NOW).id);
          for (const m of childrenOf(c, { groups })) {
            ids.add(viewOf(m, NOW).id);
          }
        }
      }
    }
    // 3 projects + 4 sessions + 8 folders + 8 placeholders.
    expect(ids.size).toBe(23);
  });
});

describe("parseTags", () => {
  it("splits on commas and spaces, drops #, dedupes", () => {
    expect(parseTags(" infra, #q1  infra,,refactor ")).toEqual(["infra", "q1", "refactor"]);
    expect(parseTags("   ")).toEqual([]);
  });
});

describe("hostile text in tooltips", () => {
  it("keeps a session id with backticks out of Markdown (no link or image from a transcript)", () => {
    const sessionId = "x`[click](https://evil.example/)` ![](https://evil.example/t.png)";
    const v = viewOf({ kind: "session", row: row({ sessionId }) }, NOW);
    const tooltip = v.tooltip ?? "";
    expect(tooltip).not.toContain("[click](");
    expect(tooltip).not.toContain("![](");
    expect(tooltip).toContain("evil\\.example"); // shown, escaped
  });
});
