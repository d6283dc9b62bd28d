/**
 * Judging lock records: expired, or taken on this host by a pid that is gone;
 * and the sanity rule that calls a record claiming an absurd lease corrupt
 * ({@linkcode lockRecordProblem}). Shared by every provider and by the
 * repository lock, so `lock status` reads the same everywhere.
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
import type { LockInfo, LockRecord } from "../lock/records.ts";
import { formatDuration } from "../duration.ts";

/** Added to a record's ttl before the local clock calls it stale. */
export const SKEW_MARGIN_MS = 5_000;

/**
 * The longest lease any modelsync takes (`--lock-ttl` refuses more). A
 * record claiming a longer ttl is corrupt, not a lock held for days.
 */
export const MAX_LOCK_TTL_MS = 24 * 3_600_000;

/**
 * Why a well-formed lock record still cannot be a live lease, or undefined
 * when it can: a ttl over {@linkcode MAX_LOCK_TTL_MS}, or a renewal time
 * more than {@linkcode SKEW_MARGIN_MS} ahead of `nowMs` (no clock that
 * modelsync trusts runs that far ahead). `renewedAtMs` overrides the
 * record's own `renewedAt` where expiry is judged by another time (S3: the
 * server's Last-Modified, which cannot lie in the future). Providers treat
 * such a record exactly like one that does not parse: held by an unknown
 * holder, and stale once it has been unchanged for their corrupt-record
 * period.
 *
 * @example
 * ```ts
 * import { lockRecordProblem } from "./stale.ts";
 * const now = Date.parse("2026-01-01T00:00:00Z");
 * lockRecordProblem({ ttlMs: 10 * 365 * 86_400_000, renewedAt: "2026-01-01T00:00:00Z" }, { nowMs: now });
 * // "it claims a ttl of 3650d, over the 24h any modelsync takes"
 * lockRecordProblem({ ttlMs: 30_000, renewedAt: "2036-01-01T00:00:00Z" }, { nowMs: now });
 * // "its renewal time 2036-01-01T00:00:00Z is 3652d in the future"
 * ```
 */
export function lockRecordProblem(
  record: Pick<LockRecord, "ttlMs" | "renewedAt">,
  opts: { nowMs: number; renewedAtMs?: number },
): string | undefined {
  if (record.ttlMs > MAX_LOCK_TTL_MS) {
    return `it claims a ttl of ${formatDuration(record.ttlMs)}, over the ` +
      `${formatDuration(MAX_LOCK_TTL_MS)} any modelsync takes`;
  }
  const renewed = opts.renewedAtMs ?? Date.parse(record.renewedAt);
  if (Number.isFinite(renewed) && renewed - opts.nowMs > SKEW_MARGIN_MS) {
    return `its renewal time ${printable(record.renewedAt)} is ` +
      `${formatDuration(renewed - opts.nowMs)} in the future`;
  }
  return undefined;
}

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

/** Longest field, in UTF-16 units, that {@linkcode printable} returns whole. */
export const PRINTABLE_MAX = 200;

const SHORT_ESCAPES: Record<string, string> = {
  "\b": "\\b",
  "\t": "\\t",
  "\n": "\\n",
  "\v": "\\v",
  "\f": "\\f",
  "\r": "\\r",
};

/**
 * True for a code point that must not reach a terminal or a one-line
 * message as is: C0 controls, DEL, C1 controls, the Unicode line and
 * paragraph separators, the bidirectional controls (they can reorder what a
 * terminal shows) and lone surrogates.
 */
function unsafe(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x200e || code === 0x200f ||
    (code >= 0x2028 && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069) ||
    (code >= 0xd800 && code <= 0xdfff);
}

function escapeChar(ch: string): string {
  const code = ch.codePointAt(0)!;
  if (!unsafe(code)) return ch;
  const short = SHORT_ESCAPES[ch];
  if (short !== undefined) return short;
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u${code.toString(16).padStart(4, "0")}`;
}

/**
 * Makes untrusted text (a lock record's fields, a file name from the
 * datastore) safe to put into a one-line message or a terminal: control
 * characters become escapes such as `\n`, `\t` and `\x1b` (C0, DEL and C1
 * controls; also `\u2028`-style escapes for the Unicode line separators,
 * bidirectional controls and lone surrogates), and a result longer than
 * `max` UTF-16 units is cut to `max` with a trailing `…` (pass `Infinity` to
 * never cut, e.g. for file paths). Ordinary text, backslashes included,
 * comes back unchanged and unquoted.
 *
 * @example
 * ```ts
 * import { printable } from "./stale.ts";
 * console.log(printable("evil\n\u001b[31mred")); // evil\n\x1b[31mred
 * ```
 */
export function printable(text: string, max: number = PRINTABLE_MAX): string {
  const limit = max === Infinity
    ? Infinity
    : Number.isFinite(max)
    ? Math.max(1, Math.floor(max))
    : PRINTABLE_MAX;
  const pieces: string[] = [];
  let length = 0;
  // By code point, so a surrogate pair is never split; stops early on huge input.
  for (const ch of String(text)) {
    const piece = escapeChar(ch);
    pieces.push(piece);
    length += piece.length;
    if (length > limit) break;
  }
  if (length <= limit) return pieces.join("");
  while (length > limit - 1) length -= pieces.pop()!.length;
  return pieces.join("") + "\u2026";
}

/**
 * Describes the holder of a lock for messages: `ci@host pid 42 (push, since
 * 12:00:01Z)`. Records are read from the datastore and untrusted, so every
 * field goes through {@linkcode printable}: the result is one line without
 * control characters.
 */
export function describeHolder(record: LockRecord): string {
  const f = (v: unknown) => printable(String(v));
  // Providers give a record they cannot parse a synthetic nonce `corrupt-…`.
  if (record.nonce.startsWith("corrupt-")) {
    return `a corrupt lock record (written ${f(record.acquiredAt)})`;
  }
  return `${f(record.holder)}@${f(record.host)} pid ${f(record.pid)} (${f(record.operation)}, ` +
    `since ${f(record.acquiredAt)})`;
}
