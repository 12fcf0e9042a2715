/** Number, time and Markdown formatting shared by the status bar and the sidebar (no `vscode`). */

/** Compact token count: 950, 12.3k, 4.56M, 1.2B. */
export function formatTokens(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) {
    return "–";
  }
  const sign = n < 0 ? "-" : "";
  const a = Math.abs(n);
  if (a < 1000) {
    return `${sign}${Math.round(a)}`;
  }
  const units: [number, string][] = [
    [1e9, "B"],
    [1e6, "M"],
    [1e3, "k"],
  ];
  for (const [size, unit] of units) {
    if (a >= size * 0.9995 || size === 1e3) {
      const v = a / size;
      const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
      let text = v.toFixed(digits);
      if (text.includes(".")) {
        text = text.replace(/0+$/, "").replace(/\.$/, "");
      }
      return `${sign}${text}${unit}`;
    }
  }
  return `${sign}${a}`;
}

/** Token count with thousands separators: 1,234,567. */
export function formatInteger(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) {
    return "–";
  }
  const sign = n < 0 ? "-" : "";
  const digits = String(Math.round(Math.abs(n)));
  return sign + digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** US dollars: $0.004 -> "$0.00", $12.3456 -> "$12.35", $1234.5 -> "$1,234.50". */
export function formatCost(usd: number | null | undefined): string {
  if (usd === null || usd === undefined || !Number.isFinite(usd)) {
    return "–";
  }
  const sign = usd < 0 ? "-" : "";
  const cents = Math.round(Math.abs(usd) * 100);
  const whole = formatInteger(Math.floor(cents / 100));
  const frac = String(cents % 100).padStart(2, "0");
  return `${sign}$${whole}.${frac}`;
}

/** Minutes as a short duration: 0m, 45m, 2h05m, 3d4h. Negative counts as zero. */
export function formatDuration(minutes: number | null | undefined): string {
  if (minutes === null || minutes === undefined || !Number.isFinite(minutes)) {
    return "–";
  }
  const total = Math.max(0, Math.round(minutes));
  if (total < 60) {
    return `${total}m`;
  }
  const days = Math.floor(total / 1440);
  const hours = Math.floor((total % 1440) / 60);
  const mins = total % 60;
  if (days > 0) {
    return `${days}d${hours}h`;
  }
  return `${hours}h${String(mins).padStart(2, "0")}m`;
}

/** Percent with no decimals above 10, one below: 42%, 7.5%. */
export function formatPercent(p: number | null | undefined): string {
  if (p === null || p === undefined || !Number.isFinite(p)) {
    return "–";
  }
  const digits = Math.abs(p) >= 10 || Number.isInteger(p) ? 0 : 1;
  return `${p.toFixed(digits)}%`;
}

/** Parse an ISO-8601 timestamp to epoch milliseconds, or NaN. */
export function parseTime(iso: string | null | undefined): number {
  if (!iso) {
    return Number.NaN;
  }
  return Date.parse(iso);
}

/** "just now", "5 min ago", "3 h ago", "2 d ago", else the date (YYYY-MM-DD, local). */
export function formatRelative(iso: string | null | undefined, nowMs: number): string {
  const t = parseTime(iso);
  if (Number.isNaN(t)) {
    return "–";
  }
  const seconds = Math.round((nowMs - t) / 1000);
  if (seconds < 45) {
    return "just now";
  }
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ago`;
  }
  const hours = Math.floor(minutes / 60);
  if (hours < 24) {
    return `${hours} h ago`;
  }
  const days = Math.floor(hours / 24);
  if (days < 30) {
    return `${days} d ago`;
  }
  return formatDate(t);
}

/** Local date YYYY-MM-DD. */
export function formatDate(ms: number): string {
  const d = new Date(ms);
  const mm = String(d.getMonth() + 1).padStart(2, "0");
  const dd = String(d.getDate()).padStart(2, "0");
  return `${d.getFullYear()}-${mm}-${dd}`;
}

/** Local wall-clock time HH:MM. */
export function formatClock(iso: string | number | null | undefined): string {
  const t = typeof iso === "number" ? iso : parseTime(iso);
  if (Number.isNaN(t)) {
    return "–";
  }
  const d = new Date(t);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

/** Local date and time YYYY-MM-DD HH:MM. */
export function formatDateTime(iso: string | null | undefined): string {
  const t = parseTime(iso);
  if (Number.isNaN(t)) {
    return "–";
  }
  return `${formatDate(t)} ${formatClock(t)}`;
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
