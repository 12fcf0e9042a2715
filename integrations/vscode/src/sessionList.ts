/**
 * The sidebar's session list as plain data (no `vscode`): loaded once with `tokmon/sessions`,
 * then kept current by the rows each `tokmon/usageChanged` push carries (docs/protocol.md,
 * "Pushes carry deltas"). A push whose `seq` is not the next one (a push was missed), or a
 * push from a server that sends no rows, asks for a full reload instead.
 */

import type { SessionRow, SessionsResult, UsageChangedParams } from "./protocol";

/** What a push did to the list. */
export type PushOutcome =
  /** Its rows were upserted (and removed sessions dropped). */
  | "applied"
  /** Nothing to do: already in the list (an older seq), or the list is not loaded yet. */
  | "ignored"
  /** Kept until the `tokmon/sessions` answer in flight arrives, then applied in order. */
  | "queued"
  /** The list cannot follow: forget it and re-fetch (a gap in `seq`, or an older server). */
  | "reload";

/** Newest first, ties by id: the order of a `tokmon/sessions` answer sorted by lastActivity. */
function newestFirst(a: SessionRow, b: SessionRow): number {
  if (a.lastActivity !== b.lastActivity) {
    return a.lastActivity < b.lastActivity ? 1 : -1;
  }
  return a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0;
}

export class SessionList {
  private rows_: SessionRow[] | undefined;
  private seq_: number | undefined;
  private loading_ = false;
  private queued: UsageChangedParams[] = [];

  /** The loaded rows (undefined until a `tokmon/sessions` answer arrived). */
  get rows(): SessionRow[] | undefined {
    return this.rows_;
  }

  /** The `seq` of the last push the rows include (undefined: not known). */
  get seq(): number | undefined {
    return this.seq_;
  }

  /** A `tokmon/sessions` request is in flight: pushes are queued until it answers. */
  beginLoad(): void {
    this.loading_ = true;
    this.queued = [];
  }

  /**
   * The `tokmon/sessions` answer: the rows and the seq they include, then the pushes that
   * arrived meanwhile. Returns "reload" when one of those could not be applied.
   */
  loaded(result: SessionsResult): "applied" | "reload" {
    this.loading_ = false;
    this.rows_ = [...result.sessions];
    this.seq_ = typeof result.seq === "number" ? result.seq : undefined;
    const queued = this.queued;
    this.queued = [];
    for (const p of queued) {
      if (this.apply(p) === "reload") {
        return "reload";
      }
    }
    return "applied";
  }

  /** The request failed: nothing loaded. */
  failed(): void {
    this.loading_ = false;
    this.queued = [];
    this.rows_ = undefined;
  }

  /** Forget the rows (the next view asks the server again). */
  reset(): void {
    this.rows_ = undefined;
    this.seq_ = undefined;
    this.queued = [];
  }

  /** Apply one `tokmon/usageChanged`. On "reload" the rows are already forgotten. */
  apply(p: UsageChangedParams): PushOutcome {
    if (this.rows_ === undefined) {
      if (this.loading_) {
        this.queued.push(p);
        return "queued";
      }
      return "ignored";
    }
    if (!Array.isArray(p.sessions) || typeof p.seq !== "number" || this.seq_ === undefined) {
      this.reset(); // an older server: its pushes name the changed sessions only
      return "reload";
    }
    if (p.seq <= this.seq_) {
      return "ignored";
    }
    if (p.seq !== this.seq_ + 1) {
      this.reset();
      return "reload";
    }
    const index = new Map(this.rows_.map((r, i) => [r.sessionId, i]));
    for (const row of p.sessions) {
      const i = index.get(row.sessionId);
      if (i === undefined) {
        index.set(row.sessionId, this.rows_.length);
        this.rows_.push(row);
      } else {
        this.rows_[i] = row;
      }
    }
    const removed = new Set(p.removedSessions ?? []);
    if (removed.size > 0) {
      this.rows_ = this.rows_.filter((r) => !removed.has(r.sessionId));
    }
    this.rows_.sort(newestFirst);
    this.seq_ = p.seq;
    return "applied";
  }

  /** Replace one row in place (merging its fields), e.g. after a metadata edit. */
  update(row: Partial<SessionRow> & { sessionId: string }): SessionRow | undefined {
    const rows = this.rows_;
    if (!rows) {
      return undefined;
    }
    const i = rows.findIndex((r) => r.sessionId === row.sessionId);
    if (i < 0) {
      return undefined;
    }
    rows[i] = { ...rows[i]!, ...row };
    return rows[i];
  }
}
