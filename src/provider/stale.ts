/**
 * Judging lock records: expired, or taken on this host by a pid that is gone.
 * Shared by every provider so `lock status` reads the same everywhere.
 *
 * @example
 * ```ts
 * import { judgeLock } from "./stale.ts";
 * const now = Date.now();
 * const info = judgeLock({
 *   key: "global", holder: "me", host: "h", pid: 1, operation: "push",
 *   acquiredAt: new Date(now).toISOString(), renewedAt: new Date(now).toISOString(),
 *   ttlMs: 30_000, nonce: "n",
 * }, { nowMs: now, skewMarginMs: 0, host: "other", pid: 2 });
 * console.log(info.stale); // false
 * ```
 * @module
 */
import process from "node:process";
import type { LockInfo, LockRecord } from "./contract.ts";

/** How to judge: whose clock, and which host we are on. */
export interface JudgeOptions {
  /** "Now" by the clock that judges expiry (the datastore's where it has one). */
  nowMs: number;
  /** Added to the ttl when `nowMs` is the local clock; 0 for a server clock. */
  skewMarginMs: number;
  /** This host and pid: a record from this host whose pid is gone is stale. */
  host: string;
  pid: number;
  /** Overrides the renewedAt time, e.g. a server Last-Modified. */
  renewedAtMs?: number;
}

/** True when a process with this pid exists on this host. */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: exists but belongs to someone else.
    return (err as { code?: string }).code === "EPERM";
  }
}

/** Adds the judgement to a lock record. */
export function judgeLock(record: LockRecord, opts: JudgeOptions): LockInfo {
  const acquired = Date.parse(record.acquiredAt);
  const renewed = opts.renewedAtMs ?? Date.parse(record.renewedAt);
  const expiresAt = renewed + record.ttlMs;
  const ttlLeftMs = expiresAt - opts.nowMs;
  const ageMs = Math.max(0, opts.nowMs - acquired);
  let staleReason: string | undefined;
  if (!Number.isFinite(renewed)) {
    staleReason = "its renewal time is unreadable";
  } else if (ttlLeftMs + opts.skewMarginMs < 0) {
    staleReason = `expired ${Math.round(-ttlLeftMs / 1000)}s ago`;
  } else if (record.host === opts.host && record.pid !== opts.pid && !pidAlive(record.pid)) {
    staleReason = `pid ${record.pid} on this host (${record.host}) is gone`;
  }
  return {
    record,
    stale: staleReason !== undefined,
    ...(staleReason === undefined ? {} : { staleReason }),
    ageMs,
    ttlLeftMs,
  };
}

/** Describes the holder of a lock for messages: `ci@host pid 42 (push, since 12:00:01Z)`. */
export function describeHolder(record: LockRecord): string {
  return `${record.holder}@${record.host} pid ${record.pid} (${record.operation}, since ${record.acquiredAt})`;
}
