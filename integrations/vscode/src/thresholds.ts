/** How full the current 5-hour window is, threshold levels and once-per-block alerts (no `vscode`). */

import type { ActiveBlock, Summary } from "./protocol";

export type Level = "normal" | "warning" | "critical";

/** Where a percentage comes from. */
export type PercentSource = "official" | "setting" | "config" | "max-completed-block";

export interface UsagePercent {
  percent: number;
  source: PercentSource;
  /** The token limit the percentage is relative to (estimates only). */
  limitTokens: number | null;
  /** Epoch ms at which the official window resets, when known. */
  resetsAtMs: number | null;
}

export interface Thresholds {
  warning: number;
  critical: number;
}

const FIVE_HOURS_MS = 5 * 60 * 60 * 1000;

/** Defaults used when the settings hold nonsense. */
export const DEFAULT_THRESHOLDS: Thresholds = { warning: 75, critical: 90 };

/** Clean thresholds from user settings: finite, non-negative, warning <= critical. */
export function normalizeThresholds(warning: unknown, critical: unknown): Thresholds {
  const w = typeof warning === "number" && Number.isFinite(warning) && warning >= 0
    ? warning
    : DEFAULT_THRESHOLDS.warning;
  const c = typeof critical === "number" && Number.isFinite(critical) && critical >= 0
    ? critical
    : DEFAULT_THRESHOLDS.critical;
  return { warning: Math.min(w, c), critical: Math.max(w, c) };
}

/** Whether the block is still running at `nowMs` (a summary can be minutes old). */
export function blockIsLive(block: ActiveBlock | null | undefined, nowMs: number): block is ActiveBlock {
  if (!block || !block.isActive) {
    return false;
  }
  const end = Date.parse(block.endTime);
  return !Number.isFinite(end) || end > nowMs;
}

/**
 * The official Claude Code 5-hour figure, when it is still current: observed less than 5 h ago
 * and its window has not reset yet.
 */
export function currentOfficial(summary: Summary, nowMs: number): UsagePercent | null {
  const official = summary.official;
  const five = official?.fiveHour;
  if (!official || !five || typeof five.usedPercentage !== "number") {
    return null;
  }
  const observedMs = official.observedAt * 1000;
  if (!Number.isFinite(observedMs) || nowMs - observedMs > FIVE_HOURS_MS) {
    return null;
  }
  const resetsAtMs = typeof five.resetsAt === "number" ? five.resetsAt * 1000 : null;
  if (resetsAtMs !== null && resetsAtMs <= nowMs) {
    return null;
  }
  return { percent: five.usedPercentage, source: "official", limitTokens: null, resetsAtMs };
}

/**
 * The percentage of the 5-hour limit in use: the official figure when current, else the active
 * block's tokens against `tokmon.tokenLimit` (when > 0), else against the server's limit.
 */
export function usagePercent(
  summary: Summary,
  tokenLimitSetting: number,
  nowMs: number,
): UsagePercent | null {
  const official = currentOfficial(summary, nowMs);
  if (official) {
    return official;
  }
  const block = summary.activeBlock;
  if (!blockIsLive(block, nowMs)) {
    return null;
  }
  if (Number.isFinite(tokenLimitSetting) && tokenLimitSetting > 0) {
    return {
      percent: (block.totalTokens / tokenLimitSetting) * 100,
      source: "setting",
      limitTokens: tokenLimitSetting,
      resetsAtMs: null,
    };
  }
  const limit = summary.tokenLimit;
  if (limit && typeof limit.tokens === "number" && limit.tokens > 0) {
    const percent = typeof block.limitPercent === "number"
      ? block.limitPercent
      : (block.totalTokens / limit.tokens) * 100;
    return {
      percent,
      source: limit.source ?? "config",
      limitTokens: limit.tokens,
      resetsAtMs: null,
    };
  }
  return null;
}

/** The level a percentage reaches. */
export function levelFor(percent: number | null | undefined, t: Thresholds): Level {
  if (percent === null || percent === undefined || !Number.isFinite(percent)) {
    return "normal";
  }
  if (percent >= t.critical) {
    return "critical";
  }
  if (percent >= t.warning) {
    return "warning";
  }
  return "normal";
}

/** The key that identifies "this block" for once-per-block alerts. */
export function blockKey(summary: Summary, usage: UsagePercent | null, nowMs: number): string | null {
  if (blockIsLive(summary.activeBlock, nowMs)) {
    return summary.activeBlock.id || summary.activeBlock.startTime;
  }
  if (usage?.source === "official" && usage.resetsAtMs !== null) {
    return `official:${usage.resetsAtMs}`;
  }
  return null;
}

/** What the alert tracker remembers (persisted across reloads by the extension). */
export interface AlertState {
  blockKey: string | null;
  notified: Level;
}

const RANK: Record<Level, number> = { normal: 0, warning: 1, critical: 2 };

/**
 * Decides when to notify: once per block for each level crossed upwards. A new block resets it;
 * falling back below a level does not re-arm it within the same block.
 */
export class ThresholdAlerts {
  private state: AlertState;

  constructor(initial?: AlertState | null) {
    this.state = initial && typeof initial === "object"
      ? { blockKey: initial.blockKey ?? null, notified: initial.notified ?? "normal" }
      : { blockKey: null, notified: "normal" };
  }

  /** Feed the current block and level; returns the level to notify about, or null. */
  check(key: string | null, level: Level): Level | null {
    if (key === null) {
      return null;
    }
    if (key !== this.state.blockKey) {
      this.state = { blockKey: key, notified: "normal" };
    }
    if (RANK[level] > RANK[this.state.notified]) {
      this.state = { blockKey: key, notified: level };
      return level;
    }
    return null;
  }

  snapshot(): AlertState {
    return { ...this.state };
  }
}
