/**
 * The official limit windows as the status bar tooltip shows them (no `vscode`): the weekly
 * window with its pace and ETA, a one-line history, and alert notifications.
 *
 * Times are shown in the server's zone (`Summary.timezone`), with the format.ts rules.
 */

import {
  escapeMarkdown,
  formatClock,
  formatDate,
  formatDuration,
  formatPercent,
  MISSING,
} from "./format";
import type { AlertRow, LimitsStatus, LimitWindow } from "./protocol";

const SPARK = "▁▂▃▄▅▆▇█";
const DAY_MS = 86_400_000;

/** The window the tooltip leads with: Claude's 7-day, else a Codex window of about a week. */
export function weeklyWindow(status: LimitsStatus | null | undefined): LimitWindow | null {
  const wins = status?.windows ?? [];
  return (
    wins.find((w) => w.source === "claude" && w.window === "seven_day") ??
    wins.find((w) => w.length !== null && w.length >= 6 * 86400 && !w.window.startsWith("seven_day_")) ??
    null
  );
}

/** Per-model weekly windows (Claude's `seven_day_opus`, `seven_day_sonnet`, ...). */
export function modelWeeklyWindows(status: LimitsStatus | null | undefined): LimitWindow[] {
  return (status?.windows ?? []).filter((w) => w.window.startsWith("seven_day_"));
}

/** Unicode block sparkline of percentages (0..100 scale; values above 100 count as full). */
export function sparkline(values: (number | null)[]): string {
  return values
    .map((v) => {
      if (v === null || !Number.isFinite(v)) {
        return " ";
      }
      const i = Math.round((Math.min(100, Math.max(0, v)) / 100) * (SPARK.length - 1));
      return SPARK[i];
    })
    .join("");
}

/**
 * The figure standing at the end of each of the last `days` days (the server's zone), oldest
 * first: the last history point at or before that moment, null before the first point.
 */
export function dailyFigures(
  history: [number, number][] | undefined,
  nowMs: number,
  days: number,
  timeZone?: string,
): { day: string; value: number | null }[] {
  const pts = (history ?? []).slice().sort((a, b) => a[0] - b[0]);
  const out: { day: string; value: number | null }[] = [];
  for (let i = days - 1; i >= 0; i--) {
    const t = nowMs - i * DAY_MS;
    const day = formatDate(t, timeZone);
    // the end of that calendar day in the zone, or now for today
    let end = t;
    if (i > 0) {
      while (formatDate(end + 60_000, timeZone) === day) {
        end += 3_600_000;
      }
      while (formatDate(end, timeZone) !== day) {
        end -= 60_000;
      }
    }
    let value: number | null = null;
    for (const [ts, used] of pts) {
      if (ts * 1000 <= end) {
        value = used;
      } else {
        break;
      }
    }
    out.push({ day, value });
  }
  return out;
}

/** "Dec 04 18:52"-style moment in the zone: date when not today, clock always. */
export function formatMoment(epochSec: number | null | undefined, nowMs: number, timeZone?: string): string {
  if (epochSec === null || epochSec === undefined || !Number.isFinite(epochSec)) {
    return MISSING;
  }
  const ms = epochSec * 1000;
  const clock = formatClock(ms, timeZone);
  return formatDate(ms, timeZone) === formatDate(nowMs, timeZone) ? clock : `${formatDate(ms, timeZone)} ${clock}`;
}

/** "61%" official, "~64% (estimate)" otherwise. */
export function windowPercent(w: LimitWindow): string {
  return w.basis === "estimate" ? `~${formatPercent(w.usedPercent)} (estimate)` : formatPercent(w.usedPercent);
}

/** "pace 2.13x · 100% at 2026-12-01 01:34" (or "not before reset"). */
export function paceText(w: LimitWindow, nowMs: number, timeZone?: string): string {
  if (w.pace === null) {
    return "pace -";
  }
  const eta = w.eta !== null ? `100% at ${formatMoment(w.eta, nowMs, timeZone)}` : "100% not before reset";
  return `pace ${w.pace.toFixed(2)}x · ${eta}`;
}

/** Markdown lines for the tooltip (empty when there is no weekly figure). */
export function limitsTooltipLines(
  status: LimitsStatus | null | undefined,
  nowMs: number,
  timeZone?: string,
): string[] {
  const week = weeklyWindow(status);
  const lines: string[] = [];
  if (week) {
    let head = `**${escapeMarkdown(week.label)}** ${windowPercent(week)} · ${paceText(week, nowMs, timeZone)}`;
    if (week.resetsAt !== null) {
      head += ` · resets ${formatMoment(week.resetsAt, nowMs, timeZone)}`;
      if (week.resetsInSeconds !== null) {
        head += ` (in ${formatDuration(week.resetsInSeconds / 60)})`;
      }
    }
    lines.push(`${head}  `);
    if (week.basis === "official" && week.ageSeconds >= 60) {
      lines.push(`_official figure from ${formatDuration(week.ageSeconds / 60)} ago_  `);
    }
    const days = dailyFigures(week.history, nowMs, 7, timeZone);
    if (days.some((d) => d.value !== null)) {
      const last = days[days.length - 1];
      const first = days.find((d) => d.value !== null);
      lines.push(
        `History (7 d) \`${sparkline(days.map((d) => d.value))}\` ` +
          `${first ? formatPercent(first.value) : MISSING} → ${formatPercent(last?.value)}  `,
      );
    }
  }
  for (const w of modelWeeklyWindows(status)) {
    lines.push(`${escapeMarkdown(w.label)} ${windowPercent(w)} · ${paceText(w, nowMs, timeZone)}  `);
  }
  return lines;
}

/** The notification text for one alert row, and whether it deserves an error (100 % crossed). */
export function alertNotification(a: AlertRow): { message: string; severity: "error" | "warning" } {
  const severe = a.threshold >= 100 && (a.kind === "official" || a.kind === "budget");
  return { message: `tokmon: ${a.message}`, severity: severe ? "error" : "warning" };
}

/** Remembers which alert keys were shown so each crossing notifies once (also across reloads). */
export class AlertLedger {
  private readonly keys: string[];

  constructor(saved: readonly string[] | undefined, private readonly max = 200) {
    this.keys = Array.isArray(saved) ? saved.filter((k) => typeof k === "string").slice(-max) : [];
  }

  /** True the first time a key is offered, false afterwards. */
  offer(key: string): boolean {
    if (this.keys.includes(key)) {
      return false;
    }
    this.keys.push(key);
    if (this.keys.length > this.max) {
      this.keys.splice(0, this.keys.length - this.max);
    }
    return true;
  }

  snapshot(): string[] {
    return this.keys.slice();
  }
}
