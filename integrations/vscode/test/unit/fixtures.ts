/** Hand-written protocol objects for the unit tests. */

import type { ActiveBlock, SessionRow, Summary } from "../../src/protocol";

export function row(overrides: Partial<SessionRow> = {}): SessionRow {
  return {
    sessionId: "0f1e2d3c-aaaa-bbbb-cccc-123456789abc",
    projectPath: "/home/u/proj",
    projectName: "proj",
    firstActivity: "2026-01-16T01:00:00.000Z",
    lastActivity: "2026-01-16T02:00:00.000Z",
    inputTokens: 100,
    outputTokens: 200,
    cacheCreationTokens: 300,
    cacheReadTokens: 400,
    totalTokens: 1000,
    totalCost: 1.5,
    modelsUsed: ["claude-opus-4-5-20251101"],
    entries: 7,
    title: null,
    isActive: false,
    name: null,
    tags: [],
    description: null,
    ...overrides,
  };
}

export function block(overrides: Partial<ActiveBlock> = {}): ActiveBlock {
  return {
    id: "2026-01-16T10:00:00.000Z",
    startTime: "2026-01-16T10:00:00.000Z",
    endTime: "2026-01-16T15:00:00.000Z",
    actualEndTime: "2026-01-16T12:30:00.000Z",
    isActive: true,
    isGap: false,
    entries: 40,
    tokenCounts: {
      inputTokens: 1000,
      outputTokens: 20_000,
      cacheCreationInputTokens: 100_000,
      cacheReadInputTokens: 1_113_456,
    },
    totalTokens: 1_234_456,
    costUSD: 4.567,
    models: ["claude-opus-4-5-20251101", "claude-haiku-4-5-20251001"],
    burnRate: { tokensPerMinute: 8230, tokensPerMinuteForIndicator: 140, costPerHour: 1.83 },
    projection: { totalTokens: 2_469_000, totalCost: 9.13, remainingMinutes: 150 },
    remainingMinutes: 150,
    burnLevel: "low",
    limitPercent: 41.2,
    ...overrides,
  };
}

const period = { inputTokens: 0, outputTokens: 0, cacheCreationTokens: 0, cacheReadTokens: 0 };

export function summary(overrides: Partial<Summary> = {}): Summary {
  return {
    generatedAt: "2026-01-16T12:30:00.000Z",
    today: { ...period, date: "2026-01-16", totalTokens: 3_000_000, totalCost: 12.345 },
    week: { ...period, week: "2026-01-12", totalTokens: 9_000_000, totalCost: 40 },
    month: { ...period, month: "2026-01", totalTokens: 20_000_000, totalCost: 90 },
    totals: { ...period, totalTokens: 50_000_000, totalCost: 200 },
    activeBlock: block(),
    tokenLimit: { tokens: 3_000_000, source: "max-completed-block" },
    official: null,
    activeSessions: [],
    projectSession: null,
    workspaceSession: null,
    workspaceProject: null,
    ...overrides,
  };
}

/** 12:30 UTC on the fixture day, in epoch ms. */
export const NOW = Date.parse("2026-01-16T12:30:00.000Z");
