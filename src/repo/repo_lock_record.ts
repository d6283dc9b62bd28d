/**
 * The record in `.modelsync/repo.lock` and how a waiting process judges it:
 * a lease like the datastore's lock records (`judgeLock`, the same sanity
 * rule `lockRecordProblem`), plus the rule for a record left by an earlier
 * process that had our pid.
 *
 * @example
 * ```ts
 * import { parseRepoLock } from "./repo_lock_record.ts";
 * const at = new Date().toISOString();
 * const parsed = parseRepoLock(JSON.stringify({
 *   pid: 42, host: "build-3", operation: "push", startedAt: at, renewedAt: at,
 *   ttlMs: 30_000, nonce: "9c1e",
 * }));
 * console.log("record" in parsed); // true
 * ```
 * @module
 */
import { judgeLock, lockRecordProblem, printable, SKEW_MARGIN_MS } from "../provider/stale.ts";
import { formatDuration } from "../duration.ts";

/** The record stored in `.modelsync/repo.lock`. */
export interface RepoLockRecord {
  pid: number;
  host: string;
  operation: string;
  /** ISO time the lock was taken. */
  startedAt: string;
  /** ISO time of the last renewal (the holder rewrites it every ttl/3). */
  renewedAt: string;
  /** Lease time: without a renewal for this long (+ skew margin) the lock is stale. */
  ttlMs: number;
  /** Random; identifies this acquisition so release never deletes another's lock. */
  nonce: string;
}

/** A lock file that is corrupt (unparseable, or an impossible lease) is taken over once unchanged this long. */
export const CORRUPT_LOCK_TAKEOVER_MS = 60_000;

/** The lock file as one read saw it. */
export interface SeenLock {
  /** The exact bytes, as text: a takeover replaces only this very version. */
  text: string;
  mtimeMs: number;
  /** Absent when the record is corrupt. */
  record?: RepoLockRecord;
  /** Why the record is corrupt. */
  problem?: string;
}

/** Who is judging: this host, this pid, and the nonces this process holds. */
export interface Judge {
  host: string;
  pid: number;
  ours: (nonce: string) => boolean;
  /** The local clock (default `Date.now()`). */
  nowMs?: number;
}

/**
 * Parses the lock file's text: the record, or why it is corrupt. A record
 * that parses but claims an impossible lease (ttl over 24 h, a renewal time
 * in the future) is corrupt too ({@linkcode lockRecordProblem}).
 */
export function parseRepoLock(
  text: string,
  nowMs: number = Date.now(),
): { record: RepoLockRecord } | { problem: string } {
  let d: unknown;
  try {
    d = JSON.parse(text);
  } catch {
    return { problem: "it is not valid JSON" };
  }
  if (typeof d !== "object" || d === null || Array.isArray(d)) {
    return { problem: "it is not a JSON object" };
  }
  const r = d as Record<string, unknown>;
  const missing = [
    ["pid", Number.isSafeInteger(r.pid)],
    ["host", typeof r.host === "string"],
    ["operation", typeof r.operation === "string"],
    ["startedAt", isTime(r.startedAt)],
    ["renewedAt", isTime(r.renewedAt)],
    ["ttlMs", Number.isSafeInteger(r.ttlMs) && (r.ttlMs as number) > 0],
    ["nonce", typeof r.nonce === "string" && r.nonce !== ""],
  ].find(([, ok]) => !ok);
  if (missing !== undefined) return { problem: `it has no valid "${missing[0]}"` };
  const record = r as unknown as RepoLockRecord;
  const problem = lockRecordProblem(record, { nowMs });
  return problem === undefined ? { record } : { problem };
}

function isTime(v: unknown): boolean {
  return typeof v === "string" && Number.isFinite(Date.parse(v));
}

/** The record in the shape the shared judgement takes. */
function asLockRecord(r: RepoLockRecord) {
  return {
    key: "repo",
    holder: "",
    host: r.host,
    pid: r.pid,
    operation: r.operation,
    acquiredAt: r.startedAt,
    renewedAt: r.renewedAt,
    ttlMs: r.ttlMs,
    nonce: r.nonce,
  };
}

/**
 * Judges a lock file: why it is stale (and may be taken over), or undefined
 * while it is live. Stale: a corrupt record unchanged for
 * {@linkcode CORRUPT_LOCK_TAKEOVER_MS}; a lease not renewed within its ttl
 * plus the skew margin (by the local clock), wherever its holder runs; a
 * holder on this host whose pid is gone; our own pid with a nonce this
 * process does not hold (a container restarted with the same pid).
 */
export function staleReason(seen: SeenLock, judge: Judge): string | undefined {
  const nowMs = judge.nowMs ?? Date.now();
  const r = seen.record;
  if (r === undefined) {
    const age = nowMs - seen.mtimeMs;
    return age > CORRUPT_LOCK_TAKEOVER_MS
      ? `it is corrupt (${seen.problem ?? "unreadable"}) and unchanged for ${formatDuration(age)}`
      : undefined;
  }
  if (r.host === judge.host && r.pid === judge.pid && !judge.ours(r.nonce)) {
    return `an earlier process with our pid ${r.pid} left it`;
  }
  const info = judgeLock(asLockRecord(r), {
    nowMs,
    skewMarginMs: SKEW_MARGIN_MS,
    host: judge.host,
    pid: judge.pid,
  });
  if (!info.stale) return undefined;
  if (info.ttlLeftMs + SKEW_MARGIN_MS >= 0) return info.staleReason; // its pid is gone
  const where = r.host === judge.host ? "" : `, on another host (${printable(r.host)})`;
  return `its lease expired ${formatDuration(-info.ttlLeftMs)} ago ` +
    `(not renewed since ${printable(r.renewedAt)}${where})`;
}

/**
 * Where the holder is, for messages: `pid 4242 on another host (build-3),
 * push since 2026-01-01T00:00:00.000Z, renewed 3s ago`. Fields are untrusted
 * (anyone can write the file) and go through `printable`.
 */
export function describeRepoHolder(seen: SeenLock, host: string, nowMs = Date.now()): string {
  const r = seen.record;
  if (r === undefined) {
    return `a corrupt lock record (${seen.problem ?? "unreadable"}, written ` +
      `${formatDuration(Math.max(0, nowMs - seen.mtimeMs))} ago)`;
  }
  const where = r.host === host ? "on this host" : `on another host (${printable(r.host)})`;
  const renewed = Date.parse(r.renewedAt);
  return `pid ${r.pid} ${where}, ${printable(r.operation)} since ${printable(r.startedAt)}, ` +
    `renewed ${formatDuration(Math.max(0, nowMs - renewed))} ago`;
}
