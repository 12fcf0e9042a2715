import { describe, expect, it } from "vitest";

import { buildStatusView, parseFormat } from "../../src/statusModel";
import { block, NOW, row, summary } from "./fixtures";

const settings = { format: "tokens" as const, thresholds: { warning: 75, critical: 90 }, tokenLimit: 0 };
const nowSec = NOW / 1000;

describe("status bar text", () => {
  it("shows block tokens, time left and the estimated percentage", () => {
    // Block ends 15:00, now 12:30 -> 2h30m left; 41.2% estimate.
    const v = buildStatusView(summary(), settings, NOW);
    expect(v.text).toBe("$(pulse) 1.23M · 2h30m left · ~41%");
    expect(v.level).toBe("normal");
  });

  it("shows cost, or both, per tokmon.statusBar.format", () => {
    expect(buildStatusView(summary(), { ...settings, format: "cost" }, NOW).text).toBe("$(pulse) $4.57 · 2h30m left · ~41%");
    expect(buildStatusView(summary(), { ...settings, format: "both" }, NOW).text).toBe(
      "$(pulse) 1.23M · $4.57 · 2h30m left · ~41%",
    );
    expect(parseFormat("weird")).toBe("tokens");
  });

  it("marks the official percentage and uses it for the level", () => {
    const s = summary({
      activeBlock: block({ burnLevel: "high" }),
      official: { sessionId: "x", observedAt: nowSec - 30, fiveHour: { usedPercentage: 92, resetsAt: nowSec + 5400 }, sevenDay: null },
    });
    const v = buildStatusView(s, settings, NOW);
    expect(v.text).toBe("$(flame)$(flame) 1.23M · 2h30m left · $(verified) 92%");
    expect(v.level).toBe("critical");
    expect(v.tooltip).toContain("92% used (official, from Claude Code), resets 14:00");
  });

  it("turns to warning from the thresholds", () => {
    const v = buildStatusView(summary({ activeBlock: block({ limitPercent: 80, burnLevel: "medium" }) }), settings, NOW);
    expect(v.level).toBe("warning");
    expect(v.text.startsWith("$(flame) ")).toBe(true);
    expect(v.tooltip).toContain("Above the warning threshold (75%)");
  });

  it("is idle without a live block, even if the summary still lists an expired one", () => {
    expect(buildStatusView(summary({ activeBlock: null }), settings, NOW).text).toBe("$(pulse) idle");
    const later = Date.parse("2026-01-16T15:00:01.000Z");
    expect(buildStatusView(summary(), settings, later).text).toBe("$(pulse) idle");
  });
});

describe("status bar tooltip", () => {
  it("has today, block, projection and the workspace session", () => {
    const s = summary({
      workspaceSession: row({ name: "Refactor *parser*", tags: ["infra"], totalTokens: 52_000, totalCost: 0.5, lastActivity: "2026-01-16T12:25:00.000Z" }),
    });
    const md = buildStatusView(s, settings, NOW).tooltip;
    expect(md).toContain("| Today | 3.00M | $12.35 |");
    expect(md).toContain("| This block | 1.23M | $4.57 |");
    expect(md).toContain("| Projected at block end | 2.47M | $9.13 |");
    expect(md).toContain("**Block** 10:00–15:00, 2h30m left");
    expect(md).toContain("**Burn rate** low (140 tokens/min, $1.83/h)");
    expect(md).toContain("estimate: against your largest completed block (3,000,000 tokens)");
    expect(md).toContain("**Refactor \\*parser\\*** · 52.0k tokens · $0.50 · last activity 5m ago · `infra`");
  });

  it("falls back to the project session and says when there is none", () => {
    const withProject = buildStatusView(summary({ projectSession: row({ title: "Fix tests" }) }), settings, NOW).tooltip;
    expect(withProject).toContain("**Fix tests**");
    expect(buildStatusView(summary(), settings, NOW).tooltip).toContain("No active session in this workspace.");
  });
});
