/** What the status bar item shows for a Summary: text, Markdown tooltip and level (no `vscode`). */

import {
  escapeMarkdown,
  formatClock,
  formatCost,
  formatDuration,
  formatInteger,
  formatPercent,
  formatRelative,
  formatTokens,
  offsetLabel,
  shortId,
  shortModel,
  truncate,
} from "./format";
import { limitsTooltipLines } from "./limitsModel";
import type { ActiveBlock, BurnLevel, LimitsStatus, SessionRow, Summary } from "./protocol";
import {
  blockIsLive,
  levelFor,
  type Level,
  type Thresholds,
  type UsagePercent,
  usagePercent,
} from "./thresholds";

export type StatusFormat = "tokens" | "cost" | "both";

export interface StatusSettings {
  format: StatusFormat;
  thresholds: Thresholds;
  tokenLimit: number;
}

export interface StatusView {
  text: string;
  tooltip: string;
  level: Level;
  usage: UsagePercent | null;
}

/** Codicon per burn level (low, medium, high). */
export const BURN_ICONS: Record<BurnLevel, string> = {
  low: "$(pulse)",
  medium: "$(flame)",
  high: "$(flame)$(flame)",
};

/** Normalise the `tokmon.statusBar.format` setting. */
export function parseFormat(value: unknown): StatusFormat {
  return value === "cost" || value === "both" ? value : "tokens";
}

/** Minutes left in the block at `nowMs` (from its end time; falls back to the server's figure). */
export function minutesLeft(block: ActiveBlock, nowMs: number): number {
  const end = Date.parse(block.endTime);
  if (Number.isFinite(end)) {
    return Math.max(0, (end - nowMs) / 60000);
  }
  return Math.max(0, block.remainingMinutes ?? 0);
}

function amount(format: StatusFormat, tokens: number, cost: number): string {
  switch (format) {
    case "cost":
      return formatCost(cost);
    case "both":
      return `${formatTokens(tokens)} · ${formatCost(cost)}`;
    default:
      return formatTokens(tokens);
  }
}

/** The percentage as the status bar marks it: official figures get a check mark, estimates a "~". */
export function percentLabel(usage: UsagePercent | null): string {
  if (!usage) {
    return "";
  }
  return usage.source === "official"
    ? `$(verified) ${formatPercent(usage.percent)}`
    : `~${formatPercent(usage.percent)}`;
}

function sourceText(usage: UsagePercent): string {
  switch (usage.source) {
    case "official":
      return "official, from Claude Code";
    case "setting":
      return `estimate: ${formatInteger(usage.limitTokens)} token limit from tokmon.tokenLimit`;
    case "config":
      return `estimate: ${formatInteger(usage.limitTokens)} token limit from tokmon's config`;
    case "max-completed-block":
      return `estimate: against your largest completed block (${formatInteger(usage.limitTokens)} tokens)`;
  }
}

function sessionLine(row: SessionRow, nowMs: number, timeZone?: string): string {
  const label = row.name ?? row.title ?? shortId(row.sessionId);
  const parts = [
    `**${escapeMarkdown(truncate(label, 60))}**`,
    `${formatTokens(row.totalTokens)} tokens`,
    formatCost(row.totalCost),
    `last activity ${formatRelative(row.lastActivity, nowMs, timeZone)}`,
  ];
  let line = parts.join(" · ");
  if (row.tags.length > 0) {
    line += ` · ${row.tags.map((t) => `\`${t.replace(/`/g, "'")}\``).join(" ")}`;
  }
  if (row.description) {
    line += `  \n${escapeMarkdown(truncate(row.description, 200))}`;
  }
  return line;
}

/** The zone the server reports its times in (a valid IANA name), else undefined (local). */
export function serverZone(summary: Summary): string | undefined {
  const tz = summary.timezone;
  if (!tz || tz === "local") {
    return undefined;
  }
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return tz;
  } catch {
    return undefined;
  }
}

/**
 * Build the whole status view; pure, so it can be tested without VS Code. Times follow the
 * server's zone (`summary.timezone`); `limits` adds the weekly window, its pace and history.
 */
export function buildStatusView(
  summary: Summary,
  settings: StatusSettings,
  nowMs: number,
  limits?: LimitsStatus | null,
): StatusView {
  const tz = serverZone(summary);
  const usage = usagePercent(summary, settings.tokenLimit, nowMs);
  const level = levelFor(usage?.percent, settings.thresholds);
  const block = blockIsLive(summary.activeBlock, nowMs) ? summary.activeBlock : null;

  let text: string;
  if (block) {
    const pieces = [
      `${BURN_ICONS[block.burnLevel] ?? BURN_ICONS.low} ${amount(settings.format, block.totalTokens, block.costUSD)}`,
      `${formatDuration(minutesLeft(block, nowMs))} left`,
    ];
    const pct = percentLabel(usage);
    if (pct) {
      pieces.push(pct);
    }
    text = pieces.join(" · ");
  } else {
    text = "$(pulse) idle";
    const pct = percentLabel(usage);
    if (pct) {
      text += ` · ${pct}`;
    }
  }

  const md: string[] = ["**tokmon** · Claude Code usage", ""];
  md.push("| | Tokens | Cost |", "|---|---:|---:|");
  md.push(`| Today | ${formatTokens(summary.today.totalTokens)} | ${formatCost(summary.today.totalCost)} |`);
  const agents = Object.entries(summary.agents ?? {});
  if (agents.length > 1) {
    // per agent today (Claude Code's row above is its own; the others are estimates from their logs)
    for (const [name, a] of agents) {
      md.push(`| Today · ${escapeMarkdown(name)} | ${formatTokens(a.today.totalTokens)} | ${formatCost(a.today.totalCost)} |`);
    }
  }
  if (block) {
    md.push(`| This block | ${formatTokens(block.totalTokens)} | ${formatCost(block.costUSD)} |`);
    if (block.projection) {
      md.push(
        `| Projected at block end | ${formatTokens(block.projection.totalTokens)} | ${formatCost(block.projection.totalCost)} |`,
      );
    }
  }
  md.push("");
  if (block) {
    md.push(
      `**Block** ${formatClock(block.startTime, tz)}–${formatClock(block.endTime, tz)}, ` +
        `${formatDuration(minutesLeft(block, nowMs))} left  `,
    );
    const rate = block.burnRate;
    const burn = rate
      ? `${block.burnLevel} (${formatInteger(rate.tokensPerMinuteForIndicator)} tokens/min, ${formatCost(rate.costPerHour)}/h)`
      : block.burnLevel;
    md.push(`**Burn rate** ${burn}  `);
    if (block.models.length > 0) {
      md.push(`**Models** ${block.models.map((m) => escapeMarkdown(shortModel(m))).join(", ")}  `);
    }
  } else {
    md.push("No active 5-hour block.  ");
  }
  if (usage) {
    let line = `**5-hour limit** ${formatPercent(usage.percent)} used (${sourceText(usage)})`;
    if (usage.resetsAtMs !== null) {
      line += `, resets ${formatClock(usage.resetsAtMs, tz)}`;
    }
    md.push(`${line}  `);
  }
  const limitLines = limitsTooltipLines(limits, nowMs, tz);
  if (limitLines.length > 0) {
    md.push(...limitLines);
  }
  if (level !== "normal") {
    md.push(
      level === "critical"
        ? `$(error) Above the critical threshold (${formatPercent(settings.thresholds.critical)})  `
        : `$(warning) Above the warning threshold (${formatPercent(settings.thresholds.warning)})  `,
    );
  }
  const session = summary.workspaceSession ?? summary.projectSession ?? null;
  md.push("");
  if (session) {
    md.push("**This workspace's active session**  ", sessionLine(session, nowMs, tz));
  } else {
    md.push("No active session in this workspace.");
  }
  md.push("");
  if (tz) {
    md.push(`_Times in ${escapeMarkdown(tz)} (${offsetLabel(nowMs, tz)}), tokmon's zone._  `);
  }
  md.push("_Click to open the tokmon sidebar._");
  return { text, tooltip: md.join("\n"), level, usage };
}
