import { describe, expect, it } from "vitest";

import type { PeriodTotals } from "../../src/protocol";
import { buildStatusView } from "../../src/statusModel";
import { agentOf, childrenOf, groupByAgent, rootNodes, viewOf } from "../../src/treeModel";
import { NOW, row, summary } from "./fixtures";

const rows = [
  row({ sessionId: "c1", projectPath: "/p/alpha", projectName: "alpha", lastActivity: "2026-01-16T12:00:00.000Z", totalTokens: 10, totalCost: 1 }),
  row({ sessionId: "x1", agent: "codex", projectPath: "/p/alpha", projectName: "alpha", lastActivity: "2026-01-16T12:20:00.000Z", totalTokens: 5, totalCost: 0.25, tags: ["t"] }),
  row({ sessionId: "x2", agent: "codex", projectPath: "/p/beta", projectName: "beta", lastActivity: "2026-01-16T11:00:00.000Z", totalTokens: 7, totalCost: 0.5 }),
  row({ sessionId: "a1", agent: "amp", projectPath: "/p/gamma", projectName: "gamma", lastActivity: "2026-01-16T12:25:00.000Z", totalTokens: 3, totalCost: 0.125 }),
  row({ sessionId: "c2", agent: "claude", projectPath: "/p/beta", projectName: "beta", lastActivity: "2026-01-15T12:00:00.000Z", totalTokens: 20, totalCost: 2 }),
];

describe("sessions grouped by agent", () => {
  it("puts Claude Code first, then agents by latest activity, each grouped by project", () => {
    const groups = groupByAgent(rows);
    expect(groups.map((g) => g.agent)).toEqual(["claude", "amp", "codex"]);
    const codex = groups[2]!;
    expect(codex.projects.map((p) => p.projectName)).toEqual(["alpha", "beta"]);
    expect([codex.sessions, codex.totalTokens, codex.totalCost]).toEqual([2, 12, 0.75]);
    expect(codex.lastActivity).toBe("2026-01-16T12:20:00.000Z");
    const claude = groups[0]!;
    expect(claude.projects.flatMap((p) => p.sessions.map((s) => s.sessionId))).toEqual(["c1", "c2"]);
    expect(agentOf(row())).toBe("claude"); // rows without `agent` are Claude Code's
  });

  it("shows agents at the top level only when more than one agent has sessions", () => {
    const top = rootNodes(rows);
    expect(top.map((n) => n.kind)).toEqual(["agent", "agent", "agent"]);
    const claudeOnly = rootNodes(rows.filter((r) => agentOf(r) === "claude"));
    expect(claudeOnly.map((n) => n.kind)).toEqual(["project", "project"]);
    // a tag that only one agent's sessions carry: back to projects
    expect(rootNodes(rows, { tag: "t" }).map((n) => n.kind)).toEqual(["project"]);
  });

  it("an agent's children are its projects, with ids unique across agents", () => {
    const top = rootNodes(rows, { workspaceProject: "/p/beta" });
    const codex = top.find((n) => n.kind === "agent" && n.group.agent === "codex")!;
    const projects = childrenOf(codex, { groups: [] });
    expect(projects.map((n) => (n.kind === "project" ? n.group.projectName : ""))).toEqual(["beta", "alpha"]);
    const claude = top[0]!;
    const ids = [...childrenOf(claude, { groups: [] }), ...projects].map((n) => viewOf(n, NOW).id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toContain("project:codex:/p/beta");
    const sessions = childrenOf(projects[0], { groups: [] });
    expect(sessions.map((n) => (n.kind === "session" ? n.row.sessionId : ""))).toEqual(["x2"]);
  });

  it("an agent node shows its sessions, tokens and cost", () => {
    const amp = rootNodes(rows).find((n) => n.kind === "agent" && n.group.agent === "amp")!;
    const v = viewOf(amp, NOW);
    expect(v.id).toBe("agent:amp");
    expect(v.label).toBe("amp");
    expect(v.description).toBe("1 session · 3 · $0.13");
    expect(v.tooltip).toContain("1 session in 1 project");
    expect(v.collapsible).toBe("collapsed");
    // the workspace's project inside an agent keeps the agent open
    const codex = rootNodes(rows, { workspaceProject: "/p/beta" }).find(
      (n) => n.kind === "agent" && n.group.agent === "codex",
    )!;
    expect(viewOf(codex, NOW).collapsible).toBe("expanded");
  });

  it("childrenOf(undefined) uses the given roots", () => {
    const roots = rootNodes(rows);
    expect(childrenOf(undefined, { groups: [], roots })).toBe(roots);
  });
});

describe("status tooltip per agent", () => {
  const period = (tokens: number, cost: number): PeriodTotals => ({
    inputTokens: 0, outputTokens: 0, cacheCreationTokens: 0, cacheReadTokens: 0,
    totalTokens: tokens, totalCost: cost,
  });
  const settings = { format: "tokens" as const, thresholds: { warning: 75, critical: 90 }, tokenLimit: 0 };

  it("lists today's tokens and cost of every agent when other agents have data", () => {
    const s = summary({
      agents: {
        claude: { today: period(3_000_000, 12.345), totals: period(1, 1) },
        codex: { today: period(1_500_000, 2.5), totals: period(2, 2) },
        "a|b": { today: period(0, 0), totals: period(0, 0) },
      },
    });
    const md = buildStatusView(s, settings, NOW).tooltip;
    expect(md).toContain("| Today · claude | 3.00M | $12.35 |");
    expect(md).toContain("| Today · codex | 1.50M | $2.50 |");
    expect(md).toContain("| Today · a\\|b | 0 | $0.00 |");
    const plain = buildStatusView(summary(), settings, NOW).tooltip;
    expect(plain).not.toContain("Today ·");
  });
});
