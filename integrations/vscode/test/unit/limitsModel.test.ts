import { describe, expect, it } from "vitest";

import {
  AlertLedger,
  alertNotification,
  dailyFigures,
  limitsTooltipLines,
  sparkline,
  weeklyWindow,
} from "../../src/limitsModel";
import type { AlertRow, LimitsStatus, LimitWindow } from "../../src/protocol";
import { buildStatusView, serverZone } from "../../src/statusModel";
import { NOW, summary } from "./fixtures";

const sec = (iso: string): number => Date.parse(iso) / 1000;
const settings = { format: "tokens" as const, thresholds: { warning: 75, critical: 90 }, tokenLimit: 0 };

// the weekly figure's history: 5% on Jan 10, 20% late on Jan 12 (UTC), 40% on Jan 14, 61% now
const HISTORY: [number, number][] = [
  [sec("2026-01-10T10:00:00Z"), 5],
  [sec("2026-01-12T20:00:00Z"), 20],
  [sec("2026-01-14T09:00:00Z"), 40],
  [sec("2026-01-16T11:00:00Z"), 61],
];

function win(overrides: Partial<LimitWindow> = {}): LimitWindow {
  return {
    source: "claude",
    window: "seven_day",
    label: "Claude 7-day",
    length: 7 * 86400,
    basis: "official",
    usedPercent: 61,
    officialPercent: 61,
    observedAt: sec("2026-01-16T11:00:00Z"),
    seenAt: sec("2026-01-16T12:29:30Z"),
    ageSeconds: 30,
    resetsAt: sec("2026-01-21T11:30:00Z"),
    resetsInSeconds: sec("2026-01-21T11:30:00Z") - NOW / 1000,
    stale: false,
    start: sec("2026-01-14T11:30:00Z"),
    elapsedPercent: 28.27,
    pace: 2.1577,
    projectedPercent: 215.77,
    eta: sec("2026-01-18T01:34:00Z"),
    peak: 61,
    history: HISTORY,
    ...overrides,
  };
}

function status(windows: LimitWindow[]): LimitsStatus {
  return { generatedAt: NOW / 1000, windows, limitReached: [], budgets: [] };
}

describe("sparkline and daily figures", () => {
  it("maps 0..100 onto eight blocks, blanks where unknown", () => {
    expect(sparkline([0, 100, 50, null, 250, -5])).toBe("▁█▅ █▁");
  });

  it("takes the figure standing at the end of each day (UTC)", () => {
    const days = dailyFigures(HISTORY, NOW, 8, "UTC");
    expect(days.map((d) => d.day)).toEqual([
      "2026-01-09", "2026-01-10", "2026-01-11", "2026-01-12",
      "2026-01-13", "2026-01-14", "2026-01-15", "2026-01-16",
    ]);
    expect(days.map((d) => d.value)).toEqual([null, 5, 5, 20, 20, 40, 40, 61]);
  });

  it("cuts days in the server's zone: 20:00 UTC on Jan 12 is Jan 13 in Kolkata", () => {
    const days = dailyFigures(HISTORY, NOW, 7, "Asia/Kolkata");
    expect(days[0]?.day).toBe("2026-01-10");
    expect(days.map((d) => d.value)).toEqual([5, 5, 5, 20, 40, 40, 61]);
  });
});

describe("weekly window in the tooltip", () => {
  it("prefers Claude's 7-day window, else a week-long Codex window", () => {
    const codex = win({ source: "codex", window: "secondary", label: "Codex 7-day" });
    const five = win({ window: "five_hour", length: 5 * 3600, label: "Claude 5-hour" });
    expect(weeklyWindow(status([five, codex, win()]))?.label).toBe("Claude 7-day");
    expect(weeklyWindow(status([five, codex]))?.label).toBe("Codex 7-day");
    expect(weeklyWindow(status([five]))).toBeNull();
    expect(weeklyWindow(null)).toBeNull();
  });

  it("shows the figure, pace, ETA, reset and a 7-day history line", () => {
    const lines = limitsTooltipLines(status([win()]), NOW, "UTC");
    expect(lines[0]).toBe(
      "**Claude 7\\-day** 61% · pace 2.16x · 100% at 2026-01-18 01:34 · resets 2026-01-21 11:30 (in 4d23h)  ",
    );
    expect(lines[1]).toBe("History (7 d) `▁▁▂▂▄▄▅` 5% → 61%  ");
  });

  it("marks an estimate and the age of an old official figure, and lists per-model windows", () => {
    const est = win({ basis: "estimate", usedPercent: 64.4, ageSeconds: 7200, pace: null, eta: null });
    const opus = win({ window: "seven_day_opus", label: "Claude 7-day opus", usedPercent: 12, pace: 0.42, eta: null });
    const lines = limitsTooltipLines(status([est, opus]), NOW, "UTC");
    expect(lines[0]).toContain("~64% (estimate) · pace -");
    expect(lines.join("\n")).not.toContain("official figure from");
    expect(lines).toContain("Claude 7\\-day opus 12% · pace 0.42x · 100% not before reset  ");
    const old = limitsTooltipLines(status([win({ ageSeconds: 7200 })]), NOW, "UTC");
    expect(old[1]).toBe("_official figure from 2h00m ago_  ");
  });

  it("puts the times in the server's zone, in the status view too", () => {
    const s = summary({ timezone: "Asia/Kolkata" });
    const v = buildStatusView(s, settings, NOW, status([win()]));
    // 10:00-15:00 UTC block = 15:30-20:30 in Kolkata (UTC+5:30)
    expect(v.tooltip).toContain("**Block** 15:30–20:30, 2h30m left");
    // ETA 01:34 UTC on Jan 18 = 07:04 there; reset 11:30 UTC = 17:00
    expect(v.tooltip).toContain("100% at 2026-01-18 07:04 · resets 2026-01-21 17:00");
    expect(v.tooltip).toContain("History (7 d) `▁▁▁▂▄▄▅`");
    expect(v.tooltip).toContain("_Times in Asia/Kolkata (UTC+5:30), tokmon's zone._");
  });

  it("shows today's ETA as a bare clock", () => {
    const lines = limitsTooltipLines(status([win({ eta: sec("2026-01-16T23:05:00Z") })]), NOW, "UTC");
    expect(lines[0]).toContain("100% at 23:05 ·");
  });

  it("falls back to the editor's zone for an unknown or missing zone", () => {
    expect(serverZone(summary({ timezone: "Mars/Olympus" }))).toBeUndefined();
    expect(serverZone(summary({ timezone: "local" }))).toBeUndefined();
    expect(serverZone(summary({ timezone: "Europe/Berlin" }))).toBe("Europe/Berlin");
    // TZ=UTC for the unit tests: the local zone is UTC
    const v = buildStatusView(summary({ timezone: "Mars/Olympus" }), settings, NOW, null);
    expect(v.tooltip).toContain("**Block** 10:00–15:00, 2h30m left");
    expect(v.tooltip).not.toContain("Times in");
  });
});

describe("alerts", () => {
  const alert = (over: Partial<AlertRow> = {}): AlertRow => ({
    id: 1, key: "official:claude/seven_day@1768995000:80", ts: NOW / 1000, kind: "official",
    subject: "Claude 7-day", threshold: 80, value: 81, message: "Claude 7-day at 81% (threshold 80%)",
    status: "sent", ...over,
  });

  it("notifies once per key, also after a reload from the saved keys", () => {
    const ledger = new AlertLedger(undefined);
    expect(ledger.offer("a")).toBe(true);
    expect(ledger.offer("a")).toBe(false);
    expect(ledger.offer("b")).toBe(true);
    const again = new AlertLedger(ledger.snapshot());
    expect(again.offer("a")).toBe(false);
    expect(again.offer("c")).toBe(true);
  });

  it("keeps at most max keys, dropping the oldest", () => {
    const ledger = new AlertLedger(["x", "y"], 2);
    expect(ledger.offer("z")).toBe(true);
    expect(ledger.snapshot()).toEqual(["y", "z"]);
    expect(ledger.offer("x")).toBe(true);
  });

  it("is an error at 100% of a window or budget, else a warning", () => {
    expect(alertNotification(alert())).toEqual({
      message: "tokmon: Claude 7-day at 81% (threshold 80%)",
      severity: "warning",
    });
    expect(alertNotification(alert({ threshold: 100 })).severity).toBe("error");
    expect(alertNotification(alert({ kind: "projected", threshold: 100 })).severity).toBe("warning");
  });
});
