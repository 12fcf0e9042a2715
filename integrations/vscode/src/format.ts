/** Number, time and Markdown formatting shared by the status bar and the sidebar (no `vscode`). */

/**
 * The same rules as tokmon/fmt.py, checked by the shared table tests/fixtures/format_cases.json.
 * Rounding is floor(x * 10^d + 0.5) on doubles in both languages, so they agree digit for digit.
 */

/** What a missing value (null, undefined, NaN, infinity) reads as on every surface. */
export const MISSING = "-";

function finite(x: number | null | undefined): x is number {
  return typeof x === "number" && Number.isFinite(x);
}

function roundHalfUp(x: number, digits = 0): number {
  return Math.floor(x * Math.pow(10, digits) + 0.5);
}

function point(scaled: number, digits: number): string {
  if (digits === 0) {
    return String(scaled);
  }
  const s = String(scaled).padStart(digits + 1, "0");
  return `${s.slice(0, -digits)}.${s.slice(-digits)}`;
}

function group(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

const UNITS: [number, string][] = [
  [1e3, "k"],
  [1e6, "M"],
  [1e9, "B"],
  [1e12, "T"],
];

/** Compact token count with three significant digits: 950, 1.00k, 12.3k, 1.00M, 2.50B. */
export function formatTokens(n: number | null | undefined): string {
  if (!finite(n)) {
    return MISSING;
  }
  const a = Math.abs(n);
  const sign = n < 0 ? "-" : "";
  const r = roundHalfUp(a);
  if (r < 1000) {
    return r === 0 ? "0" : `${sign}${r}`;
  }
  for (const [div, suffix] of UNITS) {
    const v = a / div;
    let digits = v < 10 ? 2 : v < 100 ? 1 : 0;
    let scaled = roundHalfUp(v, digits);
    while (scaled >= 1000 && digits > 0) {
      digits -= 1;
      scaled = roundHalfUp(v, digits);
    }
    if (scaled >= 1000 && suffix !== "T") {
      continue;
    }
    return `${sign}${point(scaled, digits)}${suffix}`;
  }
  return `${sign}${r}`;
}

/** Full count with thousands separators: 1,234,567. */
export function formatInteger(n: number | null | undefined): string {
  if (!finite(n)) {
    return MISSING;
  }
  const r = roundHalfUp(Math.abs(n));
  return r === 0 ? "0" : `${n < 0 ? "-" : ""}${group(r)}`;
}

/** US dollars with cents and separators: $0.00, $12.35, $1,234.50, -$2.00. */
export function formatCost(usd: number | null | undefined): string {
  if (!finite(usd)) {
    return MISSING;
  }
  const cents = roundHalfUp(Math.abs(usd), 2);
  const sign = usd < 0 && cents > 0 ? "-" : "";
  return `${sign}$${group(Math.floor(cents / 100))}.${String(cents % 100).padStart(2, "0")}`;
}

/** A whole percentage: 42%, 105%. */
export function formatPercent(p: number | null | undefined): string {
  if (!finite(p)) {
    return MISSING;
  }
  const r = roundHalfUp(Math.abs(p));
  return `${p < 0 && r > 0 ? "-" : ""}${r}%`;
}

/** Minutes as 0m, 45m, 2h05m, 1d01h (negative counts as zero). */
export function formatDuration(minutes: number | null | undefined): string {
  if (!finite(minutes)) {
    return MISSING;
  }
  const total = roundHalfUp(Math.max(0, minutes));
  if (total < 60) {
    return `${total}m`;
  }
  if (total < 1440) {
    return `${Math.floor(total / 60)}h${String(total % 60).padStart(2, "0")}m`;
  }
  return `${Math.floor(total / 1440)}d${String(Math.floor((total % 1440) / 60)).padStart(2, "0")}h`;
}

/** How long ago, largest unit only: now (under a minute), 12m, 3h, 2d. */
export function formatAge(seconds: number | null | undefined): string {
  if (!finite(seconds)) {
    return MISSING;
  }
  const s = Math.floor(Math.max(0, seconds));
  if (s < 60) {
    return "now";
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)}m`;
  }
  if (s < 86400) {
    return `${Math.floor(s / 3600)}h`;
  }
  return `${Math.floor(s / 86400)}d`;
}

/** Parse an ISO-8601 timestamp to epoch milliseconds, or NaN. */
export function parseTime(iso: string | null | undefined): number {
  if (!iso) {
    return Number.NaN;
  }
  return Date.parse(iso);
}

/** "just now", "12m ago" (the shared age rule), or the date (YYYY-MM-DD) after 30 days. */
export function formatRelative(iso: string | null | undefined, nowMs: number, timeZone?: string): string {
  const t = parseTime(iso);
  if (Number.isNaN(t)) {
    return MISSING;
  }
  const seconds = (nowMs - t) / 1000;
  if (seconds >= 30 * 86400) {
    return formatDate(t, timeZone);
  }
  const age = formatAge(seconds);
  return age === "now" ? "just now" : `${age} ago`;
}

interface WallClock {
  year: string;
  month: string;
  day: string;
  hour: string;
  minute: string;
  offsetMinutes: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The wall clock of epoch milliseconds in `timeZone` (IANA name; undefined: the local zone). */
function wallClock(ms: number, timeZone?: string): WallClock {
  const key = timeZone ?? "";
  let f = formatters.get(key);
  if (f === undefined) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(key, f);
  }
  const parts: Record<string, string> = {};
  for (const p of f.formatToParts(new Date(ms))) {
    parts[p.type] = p.value;
  }
  const year = parts.year ?? "0000";
  const month = parts.month ?? "01";
  const day = parts.day ?? "01";
  const hour = parts.hour === "24" ? "00" : (parts.hour ?? "00");
  const minute = parts.minute ?? "00";
  const asUtc = Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(parts.second ?? "0"));
  const offsetMinutes = Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60000);
  return { year, month, day, hour, minute, offsetMinutes };
}

function toMs(t: string | number | null | undefined): number {
  if (typeof t === "number") {
    return Number.isFinite(t) ? t : Number.NaN;
  }
  return parseTime(t);
}

/** Date YYYY-MM-DD in `timeZone` (default: local). */
export function formatDate(t: string | number | null | undefined, timeZone?: string): string {
  const ms = toMs(t);
  if (Number.isNaN(ms)) {
    return MISSING;
  }
  const w = wallClock(ms, timeZone);
  return `${w.year}-${w.month}-${w.day}`;
}

/** Wall-clock time HH:MM in `timeZone` (default: local). */
export function formatClock(t: string | number | null | undefined, timeZone?: string): string {
  const ms = toMs(t);
  if (Number.isNaN(ms)) {
    return MISSING;
  }
  const w = wallClock(ms, timeZone);
  return `${w.hour}:${w.minute}`;
}

/** Date and time YYYY-MM-DD HH:MM in `timeZone` (default: local). */
export function formatDateTime(t: string | number | null | undefined, timeZone?: string): string {
  const ms = toMs(t);
  if (Number.isNaN(ms)) {
    return MISSING;
  }
  const w = wallClock(ms, timeZone);
  return `${w.year}-${w.month}-${w.day} ${w.hour}:${w.minute}`;
}

/** The zone's offset at that time: UTC, UTC+14, UTC-10, UTC+5:30. */
export function offsetLabel(t: string | number | null | undefined, timeZone?: string): string {
  const ms = toMs(t);
  if (Number.isNaN(ms)) {
    return MISSING;
  }
  const m = wallClock(ms, timeZone).offsetMinutes;
  if (m === 0) {
    return "UTC";
  }
  const a = Math.abs(m);
  const mm = a % 60;
  return `UTC${m > 0 ? "+" : "-"}${Math.floor(a / 60)}${mm ? `:${String(mm).padStart(2, "0")}` : ""}`;
}

/** HH:MM followed by the zone's offset label: "09:00 UTC+14". */
export function formatClockZoned(t: string | number | null | undefined, timeZone?: string): string {
  const ms = toMs(t);
  if (Number.isNaN(ms)) {
    return MISSING;
  }
  return `${formatClock(ms, timeZone)} ${offsetLabel(ms, timeZone)}`;
}

/** Escape text so Markdown shows it literally (names, titles and tags are user text). */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>~]/g, (c) => `\\${c}`).replace(/\r?\n/g, " ");
}

/** First 8 characters of a session id. */
export function shortId(sessionId: string): string {
  return sessionId.length > 8 ? sessionId.slice(0, 8) : sessionId;
}

/** Shorten a single line of text to at most `max` characters with an ellipsis. */
export function truncate(text: string, max: number): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length <= max ? line : `${line.slice(0, Math.max(0, max - 1)).trimEnd()}…`;
}

/** Short model name: "claude-opus-4-5-20251101" -> "opus-4-5". */
export function shortModel(model: string): string {
  return model.replace(/^claude-/, "").replace(/-\d{8}$/, "");
}
