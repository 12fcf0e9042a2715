import { readFileSync } from "node:fs";
import { join } from "node:path";

import { describe, expect, it } from "vitest";

import {
  MISSING,
  escapeMarkdown,
  formatAge,
  formatClock,
  formatClockZoned,
  formatCost,
  formatDate,
  formatDateTime,
  formatDuration,
  formatInteger,
  formatPercent,
  formatRelative,
  formatTokens,
  offsetLabel,
  shortModel,
  truncate,
} from "../../src/format";

// The table shared with tokmon/fmt.py (tests/test_format.py runs the same cases).
type ValueCase = [number | null, string];
type TimeCase = [number | null, string, string];
const CASES = JSON.parse(
  readFileSync(join(__dirname, "..", "..", "..", "..", "tests", "fixtures", "format_cases.json"), "utf8"),
) as Record<string, unknown>;

const VALUE_FUNCS: Record<string, (n: number | null) => string> = {
  tokens: formatTokens,
  integer: formatInteger,
  cost: formatCost,
  percent: formatPercent,
  duration: formatDuration,
  age: formatAge,
};
// Python takes epoch seconds; the TypeScript functions take epoch milliseconds.
const TIME_FUNCS: Record<string, (ms: number | null, zone: string) => string> = {
  clock: formatClock,
  date_time: formatDateTime,
  date: formatDate,
  offset_label: offsetLabel,
  clock_zoned: formatClockZoned,
};

describe("shared formatting cases (tests/fixtures/format_cases.json)", () => {
  it("reads the same missing-value mark", () => {
    expect(CASES.missing).toBe(MISSING);
  });

  for (const [kind, fn] of Object.entries(VALUE_FUNCS)) {
    const cases = CASES[kind] as ValueCase[];
    it(`has cases for ${kind}`, () => {
      expect(cases.length).toBeGreaterThanOrEqual(4);
    });
    it.each(cases)(`${kind}(%s) -> %s`, (value, expected) => {
      expect(fn(value)).toBe(expected);
    });
  }

  for (const [kind, fn] of Object.entries(TIME_FUNCS)) {
    const cases = CASES[kind] as TimeCase[];
    it.each(cases)(`${kind}(%s, %s) -> %s`, (ts, zone, expected) => {
      expect(fn(ts === null ? null : ts * 1000, zone)).toBe(expected);
    });
  }

  it("treats NaN and infinity as missing", () => {
    for (const fn of Object.values(VALUE_FUNCS)) {
      expect(fn(Number.NaN)).toBe(MISSING);
      expect(fn(Number.POSITIVE_INFINITY)).toBe(MISSING);
    }
  });
});

describe("formatRelative (TZ=UTC)", () => {
  const now = Date.parse("2026-01-16T12:00:00.000Z");
  it.each([
    ["2026-01-16T11:59:30.000Z", "just now"],
    ["2026-01-16T11:55:00.000Z", "5m ago"],
    ["2026-01-16T09:00:00.000Z", "3h ago"],
    ["2026-01-14T11:00:00.000Z", "2d ago"],
    ["2025-11-01T11:00:00.000Z", "2025-11-01"],
    ["garbage", "-"],
  ])("%s -> %s", (iso, text) => {
    expect(formatRelative(iso, now)).toBe(text);
  });

  it("formats the wall clock in the local zone by default", () => {
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
