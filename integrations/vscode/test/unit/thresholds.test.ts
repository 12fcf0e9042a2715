import { describe, expect, it } from "vitest";

import {
  blockKey,
  levelFor,
  normalizeThresholds,
  ThresholdAlerts,
  usagePercent,
} from "../../src/thresholds";
import { block, NOW, summary } from "./fixtures";

const nowSec = NOW / 1000;

describe("usagePercent", () => {
  it("uses the server's limit percentage and names its source", () => {
    const u = usagePercent(summary(), 0, NOW);
    expect(u).toEqual({ percent: 41.2, source: "max-completed-block", limitTokens: 3_000_000, resetsAtMs: null });
  });

  it("computes from the block tokens when the server gave no percentage", () => {
    const s = summary({ activeBlock: block({ limitPercent: null, totalTokens: 1_500_000 }) });
    expect(usagePercent(s, 0, NOW)?.percent).toBe(50);
  });

  it("lets tokmon.tokenLimit override the server's limit", () => {
    const u = usagePercent(summary(), 2_000_000, NOW);
    expect(u?.source).toBe("setting");
    expect(u?.percent).toBeCloseTo((1_234_456 / 2_000_000) * 100, 6);
  });

  it("prefers a current official 5-hour figure over any estimate", () => {
    const s = summary({
      official: {
        sessionId: "s",
        observedAt: nowSec - 600,
        fiveHour: { usedPercentage: 63, resetsAt: nowSec + 3600 },
        sevenDay: null,
      },
    });
    const u = usagePercent(s, 2_000_000, NOW);
    expect(u).toEqual({ percent: 63, source: "official", limitTokens: null, resetsAtMs: NOW + 3_600_000 });
  });

  it("ignores an official figure whose window has reset or that is stale", () => {
    const reset = summary({
      official: { sessionId: "s", observedAt: nowSec - 60, fiveHour: { usedPercentage: 99, resetsAt: nowSec - 1 }, sevenDay: null },
    });
    expect(usagePercent(reset, 0, NOW)?.source).toBe("max-completed-block");
    const stale = summary({
      official: { sessionId: "s", observedAt: nowSec - 6 * 3600, fiveHour: { usedPercentage: 99, resetsAt: null }, sevenDay: null },
    });
    expect(usagePercent(stale, 0, NOW)?.source).toBe("max-completed-block");
  });

  it("ignores a block that has ended since the summary was made", () => {
    expect(usagePercent(summary(), 0, Date.parse("2026-01-16T15:00:00.000Z"))).toBeNull();
    expect(usagePercent(summary({ activeBlock: block({ isActive: false }) }), 0, NOW)).toBeNull();
  });

  it("has nothing to say without a block or a limit", () => {
    expect(usagePercent(summary({ activeBlock: null }), 0, NOW)).toBeNull();
    const noLimit = summary({ tokenLimit: { tokens: null, source: null }, activeBlock: block({ limitPercent: null }) });
    expect(usagePercent(noLimit, 0, NOW)).toBeNull();
  });
});

describe("levels", () => {
  const t = { warning: 75, critical: 90 };
  it.each([
    [null, "normal"],
    [74.99, "normal"],
    [75, "warning"],
    [89.9, "warning"],
    [90, "critical"],
    [250, "critical"],
  ] as const)("%s%% -> %s", (p, level) => {
    expect(levelFor(p, t)).toBe(level);
  });

  it("cleans up nonsense settings", () => {
    expect(normalizeThresholds(95, 80)).toEqual({ warning: 80, critical: 95 });
    expect(normalizeThresholds("x", -1)).toEqual({ warning: 75, critical: 90 });
  });
});

describe("ThresholdAlerts", () => {
  it("notifies once per level per block, again in a new block", () => {
    const alerts = new ThresholdAlerts();
    expect(alerts.check("b1", "normal")).toBeNull();
    expect(alerts.check("b1", "warning")).toBe("warning");
    expect(alerts.check("b1", "warning")).toBeNull();
    expect(alerts.check("b1", "normal")).toBeNull();
    expect(alerts.check("b1", "warning")).toBeNull();
    expect(alerts.check("b1", "critical")).toBe("critical");
    expect(alerts.check("b1", "critical")).toBeNull();
    expect(alerts.check("b2", "critical")).toBe("critical");
    expect(alerts.check(null, "critical")).toBeNull();
  });

  it("survives a reload through its snapshot", () => {
    const first = new ThresholdAlerts();
    first.check("b1", "warning");
    const second = new ThresholdAlerts(JSON.parse(JSON.stringify(first.snapshot())) as ReturnType<ThresholdAlerts["snapshot"]>);
    expect(second.check("b1", "warning")).toBeNull();
    expect(second.check("b1", "critical")).toBe("critical");
  });

  it("keys blocks by id, or by the official reset time without a local block", () => {
    const s = summary();
    expect(blockKey(s, usagePercent(s, 0, NOW), NOW)).toBe("2026-01-16T10:00:00.000Z");
    const off = summary({
      activeBlock: null,
      official: { sessionId: "s", observedAt: nowSec, fiveHour: { usedPercentage: 80, resetsAt: nowSec + 60 }, sevenDay: null },
    });
    expect(blockKey(off, usagePercent(off, 0, NOW), NOW)).toBe(`official:${NOW + 60_000}`);
    expect(blockKey(summary({ activeBlock: null }), null, NOW)).toBeNull();
  });
});
