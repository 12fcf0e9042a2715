/**
 * The tokmon server protocol (docs/protocol.md): method names and message types.
 *
 * This module imports nothing from `vscode`: the extension uses it through
 * vscode-languageclient and the Node integration test through vscode-jsonrpc.
 */

/** Protocol version this extension speaks; an older server is "too old". */
export const PROTOCOL_VERSION = 1;
/** Oldest tokmon release this extension works with. */
export const MIN_TOKMON_VERSION = "0.1.0";
/**
 * The commands a user runs to install or update tokmon. Its distribution on PyPI is
 * `tokmon-cli` (PyPI's `tokmon` is an unrelated project); the command it installs is `tokmon`.
 */
export const INSTALL_COMMAND = "pipx install --force tokmon-cli";
export const UPGRADE_COMMAND = "pipx upgrade tokmon-cli";

export const Methods = {
  version: "tokmon/version",
  hello: "tokmon/hello",
  summary: "tokmon/summary",
  sessions: "tokmon/sessions",
  session: "tokmon/session",
  blocks: "tokmon/blocks",
  daily: "tokmon/daily",
  refresh: "tokmon/refresh",
  setSessionMetadata: "tokmon/setSessionMetadata",
  limits: "tokmon/limits",
} as const;

export const Notifications = {
  usageChanged: "tokmon/usageChanged",
  metadataChanged: "tokmon/metadataChanged",
  limitsChanged: "tokmon/limitsChanged",
  alert: "tokmon/alert",
} as const;

/** Commands the server offers through `workspace/executeCommand`. */
export const ServerCommands = {
  tagSession: "tokmon.tagSession",
  describeSession: "tokmon.describeSession",
  renameSession: "tokmon.renameSession",
} as const;

export interface VersionResult {
  version: string;
  protocol: number;
}

/**
 * What a client asks the server for (`tokmon/hello`, or under LSP `initializationOptions`):
 * `activeDeltas` makes the pushes' summaries come without `activeSessions` (the client keeps
 * that list from the pushed rows and `activeIds`; docs/protocol.md, "The active list").
 */
export interface ClientCapabilities {
  activeDeltas?: boolean;
}

/** The capabilities this extension asks for: it never reads the pushed summary's list. */
export const CLIENT_CAPABILITIES: ClientCapabilities = { activeDeltas: true };

export interface HelloResult extends VersionResult {
  /** What the server granted. */
  capabilities: ClientCapabilities;
}

/** Token and cost totals of a period (today, week, month, all time). */
export interface PeriodTotals {
  date?: string;
  week?: string;
  month?: string;
  inputTokens: number;
  outputTokens: number;
  cacheCreationTokens: number;
  cacheReadTokens: number;
  totalTokens: number;
  totalCost: number;
}

export interface TokenCounts {
  inputTokens: number;
  outputTokens: number;
  cacheCreationInputTokens: number;
  cacheReadInputTokens: number;
}

export interface BurnRate {
  tokensPerMinute: number;
  tokensPerMinuteForIndicator: number;
  costPerHour: number;
}

export interface Projection {
  totalTokens: number;
  totalCost: number;
  remainingMinutes: number;
}

export type BurnLevel = "low" | "medium" | "high";

/** A 5-hour billing block (ccusage shape). */
export interface Block {
  id: string;
  startTime: string;
  endTime: string;
  actualEndTime: string | null;
  isActive: boolean;
  isGap: boolean;
  entries: number;
  tokenCounts: TokenCounts;
  totalTokens: number;
  costUSD: number;
  models: string[];
  burnRate?: BurnRate | null;
  projection?: Projection | null;
}

/** The active block as the summary reports it. */
export interface ActiveBlock extends Block {
  remainingMinutes: number;
  burnLevel: BurnLevel;
  limitPercent: number | null;
}

export interface TokenLimit {
  tokens: number | null;
  source: "config" | "max-completed-block" | null;
}

export interface OfficialWindow {
  usedPercentage: number;
  /** Epoch seconds. */
  resetsAt: number | null;
}

/** The latest official figures Claude Code gave its statusline. */
export interface Official {
  sessionId: string | null;
  /** Epoch seconds. */
  observedAt: number;
  fiveHour: OfficialWindow | null;
  sevenDay: OfficialWindow | null;
}

export interface SessionRow {
  sessionId: string;
  projectPath: string;
  projectName: string;
  firstActivity: string;
  lastActivity: string;
  inputTokens: number;
  outputTokens: number;
  cacheCreationTokens: number;
  cacheReadTokens: number;
  totalTokens: number;
  totalCost: number;
  modelsUsed: string[];
  entries: number;
  title: string | null;
  isActive: boolean;
  name: string | null;
  /** Where `name` comes from: the user's own name, Claude's title, or none. */
  nameSource?: "user" | "claude" | null;
  tags: string[];
  description: string | null;
  /** Which coding agent the session belongs to (`claude`, `codex`, …; absent = `claude`). */
  agent?: string;
}

/** One agent's figures in a Summary (present only when agents other than Claude have data). */
export interface AgentTotals {
  today: PeriodTotals;
  totals: PeriodTotals;
}

export interface Summary {
  generatedAt: string;
  timezone?: string;
  today: PeriodTotals;
  week: PeriodTotals;
  month: PeriodTotals;
  totals: PeriodTotals;
  activeBlock: ActiveBlock | null;
  tokenLimit: TokenLimit;
  official: Official | null;
  /**
   * The sessions active in the last 5 hours: always in `tokmon/summary` answers, absent from
   * the pushes to a client that asked for `activeDeltas`.
   */
  activeSessions?: SessionRow[];
  projectSession: SessionRow | null;
  workspaceSession?: SessionRow | null;
  workspaceProject?: string | null;
  /** Per agent (Claude Code first), only when other agents have data. */
  agents?: Record<string, AgentTotals>;
  /** `tokmon/summary` answers: the last `tokmon/usageChanged` seq they include. */
  seq?: number;
}

export interface SummaryParams {
  workspaceFolder?: string;
}

export type SessionSort = "lastActivity" | "cost" | "tokens" | "name";

export interface SessionsParams {
  project?: string;
  tag?: string;
  since?: string;
  until?: string;
  sort?: SessionSort;
  order?: "asc" | "desc";
  limit?: number;
  workspaceFolder?: string;
}

export interface SessionsResult {
  sessions: SessionRow[];
  workspaceProject: string | null;
  /** The last `tokmon/usageChanged` seq these rows include (absent from older servers). */
  seq?: number;
}

export interface SessionParams {
  sessionId: string;
}

export interface ModelBreakdown {
  modelName: string;
  inputTokens: number;
  outputTokens: number;
  cacheCreationTokens: number;
  cacheReadTokens: number;
  totalTokens: number;
  cost: number;
  /** Usage records (API responses) of this model in the session. */
  requests?: number;
  /** The part of cacheCreationTokens written with a 1-hour lifetime. */
  cacheCreation1hTokens?: number;
}

export interface TimelinePoint {
  /** Start of the UTC hour. */
  hour: string;
  totalTokens: number;
  cost: number;
  requests?: number;
}

/** The stored metadata record of a session (docs/sessions.md). */
export interface SessionMetadata {
  name?: string | null;
  tags?: string[];
  description?: string | null;
  claudeTitle?: string | null;
  createdAt?: string;
  updatedAt?: string;
}

/** `tokmon/session` and `tokmon session show --json`: the same object (docs/sessions.md). */
export interface SessionDetail extends SessionRow {
  /** By cost, highest first. */
  models: ModelBreakdown[];
  /** The session's own usage in 5-hour windows (no gaps). */
  blocks: Block[];
  timeline: TimelinePoint[];
  cacheCreation1hTokens?: number;
  metadata?: SessionMetadata | null;
}

export interface SetSessionMetadataParams {
  sessionId: string;
  name?: string | null;
  tags?: string[];
  addTags?: string[];
  removeTags?: string[];
  description?: string | null;
}

export interface UsageChangedParams {
  summary: Summary;
  changedSessions: string[];
  /** Other agents whose records changed (only when some did). */
  agents?: string[];
  /** One more than the previous push's (absent from older servers): a gap means a push was missed. */
  seq?: number;
  /** The changed sessions' rows, as `tokmon/sessions` gives them (absent from older servers). */
  sessions?: SessionRow[];
  /** Changed sessions that no longer have a row. */
  removedSessions?: string[];
  /**
   * The ids of the rows in `sessions` that are in the active set now (Claude Code's sessions
   * active in the last 5 hours); the other rows are not (those that left it by the clock
   * come with a push of their own, their `isActive` false).
   */
  activeIds?: string[];
}

export interface MetadataChangedParams {
  sessionId: string;
  name: string | null;
  nameSource?: "user" | "claude" | null;
  tags: string[];
  description: string | null;
}

/** One official limit window as `tokmon limits --json` reports it (docs/limits.md). */
export interface LimitWindow {
  /** "claude" or "codex". */
  source: string;
  /** five_hour, seven_day, seven_day_opus, ... (Claude); primary, secondary (Codex). */
  window: string;
  label: string;
  /** Window length in seconds. */
  length: number | null;
  basis: "official" | "estimate";
  usedPercent: number;
  officialPercent: number | null;
  /** Epoch seconds. */
  observedAt: number;
  seenAt: number;
  ageSeconds: number;
  resetsAt: number | null;
  resetsInSeconds: number | null;
  stale: boolean;
  start: number | null;
  elapsedPercent: number | null;
  pace: number | null;
  projectedPercent: number | null;
  /** Epoch seconds when 100 % is reached at this pace (null: not before the reset). */
  eta: number | null;
  peak: number;
  /** `[epoch seconds, used %]` of the last 8 days, oldest first (one point per change). */
  history?: [number, number][];
}

/** One `[[budgets]]` entry with its use in the current period. */
export interface BudgetUse {
  name: string;
  period: "day" | "week" | "month";
  periodKey: string;
  unit: "usd" | "tokens";
  limit: number;
  used: number;
  percent: number;
  projected: number;
  projectedPercent: number;
  exceeded: boolean;
}

/** `tokmon/limits` result and `tokmon/limitsChanged` params. */
export interface LimitsStatus {
  generatedAt: number;
  windows: LimitWindow[];
  limitReached: { source: string; ts: number; resetsAt: number }[];
  budgets?: BudgetUse[];
}

/** `tokmon/alert` params: one row of the alert log (fired once across processes). */
export interface AlertRow {
  id: number;
  key: string;
  /** Epoch seconds. */
  ts: number;
  kind: string;
  subject: string;
  threshold: number;
  value: number | null;
  message: string;
  status: string;
}

/** Minimal request/notification surface shared by LanguageClient and MessageConnection. */
export interface RequestSender {
  sendRequest<R>(method: string, params?: unknown): Promise<R>;
}

/** Typed wrappers over the custom requests, usable with either transport. */
export class TokmonApi {
  constructor(private readonly sender: RequestSender) {}

  version(): Promise<VersionResult> {
    return this.sender.sendRequest<VersionResult>(Methods.version, {});
  }

  hello(capabilities: ClientCapabilities = CLIENT_CAPABILITIES): Promise<HelloResult> {
    return this.sender.sendRequest<HelloResult>(Methods.hello, { capabilities });
  }

  summary(params: SummaryParams = {}): Promise<Summary> {
    return this.sender.sendRequest<Summary>(Methods.summary, params);
  }

  sessions(params: SessionsParams = {}): Promise<SessionsResult> {
    return this.sender.sendRequest<SessionsResult>(Methods.sessions, params);
  }

  session(sessionId: string): Promise<SessionDetail> {
    return this.sender.sendRequest<SessionDetail>(Methods.session, { sessionId });
  }

  refresh(params: SummaryParams = {}): Promise<Summary> {
    return this.sender.sendRequest<Summary>(Methods.refresh, params);
  }

  setSessionMetadata(params: SetSessionMetadataParams): Promise<SessionRow> {
    return this.sender.sendRequest<SessionRow>(Methods.setSessionMetadata, params);
  }

  limits(): Promise<LimitsStatus> {
    return this.sender.sendRequest<LimitsStatus>(Methods.limits, {});
  }
}

/** Compare dotted versions numerically ("0.10.0" > "0.9.1"); pre-release suffixes are ignored. */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string): number[] =>
    v
      .trim()
      .replace(/^v/i, "")
      .split(/[.+-]/)
      .slice(0, 3)
      .map((p) => {
        const n = Number.parseInt(p, 10);
        return Number.isFinite(n) ? n : 0;
      });
  const pa = parse(a);
  const pb = parse(b);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) {
      return d < 0 ? -1 : 1;
    }
  }
  return 0;
}

/** Why a server's version answer is unacceptable, or null when it is fine. */
export function versionProblem(result: Partial<VersionResult> | null | undefined): string | null {
  if (!result || typeof result.version !== "string") {
    return "it did not report its version";
  }
  if (typeof result.protocol !== "number" || result.protocol < PROTOCOL_VERSION) {
    return `tokmon ${result.version} speaks protocol ${String(result.protocol ?? "?")}, ` +
      `this extension needs protocol ${PROTOCOL_VERSION}`;
  }
  if (compareVersions(result.version, MIN_TOKMON_VERSION) < 0) {
    return `tokmon ${result.version} is older than ${MIN_TOKMON_VERSION}`;
  }
  return null;
}
