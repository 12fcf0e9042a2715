import { describe, expect, it } from "vitest";

import {
  escapeMarkdown,
  formatClock,
  formatCost,
  formatDuration,
  formatInteger,
  formatPercent,
  formatRelative,
  formatTokens,
  shortModel,
  truncate,
} from "../../src/format";

describe("formatTokens", () => {
  it.each([
    [0, "0"],
    [999, "999"],
    [1000, "1k"],
    [1500, "1.5k"],
    [12_345, "12.3k"],
    [999_400, "999k"],
    [999_600, "1M"],
    [1_234_567, "1.23M"],
    [43_009_651, "43M"],
    [2_500_000_000, "2.5B"],
    [-1500, "-1.5k"],
  ])("%d -> %s", (n, text) => {
    expect(formatTokens(n)).toBe(text);
  });

  it("shows a dash for missing values", () => {
    expect(formatTokens(null)).toBe("–");
    expect(formatTokens(Number.NaN)).toBe("–");
  });
});

describe("formatCost and formatInteger", () => {
  it("rounds to cents with separators", () => {
    expect(formatCost(0)).toBe("$0.00");
    expect(formatCost(0.004)).toBe("$0.00");
    expect(formatCost(0.005)).toBe("$0.01");
    expect(formatCost(12.3456)).toBe("$12.35");
    expect(formatCost(1234.5)).toBe("$1,234.50");
    expect(formatCost(36.2335)).toBe("$36.23");
    expect(formatCost(-2)).toBe("-$2.00");
  });

  it("groups digits", () => {
    expect(formatInteger(43_009_651)).toBe("43,009,651");
    expect(formatInteger(999)).toBe("999");
    expect(formatInteger(1000)).toBe("1,000");
  });
});

describe("formatDuration", () => {
  it.each([
    [0, "0m"],
    [-5, "0m"],
    [45, "45m"],
    [59.6, "1h00m"],
    [125, "2h05m"],
    [300, "5h00m"],
    [1500, "1d1h"],
  ])("%d min -> %s", (m, text) => {
    expect(formatDuration(m)).toBe(text);
  });
});

describe("formatPercent", () => {
  it("drops decimals above 10%", () => {
    expect(formatPercent(42.4)).toBe("42%");
    expect(formatPercent(7.46)).toBe("7.5%");
    expect(formatPercent(100)).toBe("100%");
    expect(formatPercent(null)).toBe("–");
  });
});

describe("formatRelative and formatClock (TZ=UTC)", () => {
  const now = Date.parse("2026-01-16T12:00:00.000Z");
  it.each([
    ["2026-01-16T11:59:30.000Z", "just now"],
    ["2026-01-16T11:55:00.000Z", "5 min ago"],
    ["2026-01-16T09:00:00.000Z", "3 h ago"],
    ["2026-01-14T11:00:00.000Z", "2 d ago"],
    ["2025-11-01T11:00:00.000Z", "2025-11-01"],
    ["garbage", "–"],
  ])("%s -> %s", (iso, text) => {
    expect(formatRelative(iso, now)).toBe(text);
  });

  it("formats the wall clock in the local zone", () => {
    expect(process.env.TZ).toBe("UTC");
    expect(formatClock("2026-01-16T07:05:00.000Z")).toBe("07:05");
  });
});

describe("text helpers", () => {
  it("escapes Markdown so user text is shown literally", () => {
    expect(escapeMarkdown("fix *all* the [bugs](x)")).toBe("fix \\*all\\* the \\[bugs\\]\\(x\\)");
    expect(escapeMarkdown("a\nb")).toBe("a b");
  });

  it("truncates on one line", () => {
    expect(truncate("hello   world", 20)).toBe("hello world");
    expect(truncate("abcdefghij", 5)).toBe("abcd…");
  });

  it("shortens model ids", () => {
    expect(shortModel("claude-opus-4-5-20251101")).toBe("opus-4-5");
    expect(shortModel("claude-opus-4-6")).toBe("opus-4-6");
  });
});
