/**
 * Lock records of the filesystem provider as stored: the contract's
 * `LockRecord` plus an integer `seq` that increments on every replacement.
 * Reading gives a {@linkcode RecordState}: absent, a valid record with its
 * version identity, or a corrupt record identified by its content digest.
 *
 * @module
 */
import type { LockInfo, LockRecord } from "../../provider/contract.ts";
import { publicRecord, storedLockRecordSchema } from "../../provider/lock_schema.ts";
import { judgeLock, lockRecordProblem } from "../../provider/stale.ts";
import { digest } from "./blobs.ts";
import { fsFail, isNotFound } from "./_fs.ts";

/** A corrupt record is stale only once it is unchanged for this long (plus skew). */
export const CORRUPT_TTL_MS = 30_000;
/** Holder shown for a record that cannot be parsed. */
export const CORRUPT_HOLDER = "unknown (corrupt record)";
/** Nonces that may appear in claim file names; others are identified by digest. */
const SAFE_NONCE = /^[A-Za-z0-9_]{1,128}$/;

/** A record as written: the contract's fields plus `seq`. */
export interface StoredRecord extends LockRecord {
  seq: number;
}

/** What a record file holds right now. */
export type RecordState =
  | {
    kind: "ok";
    record: LockRecord;
    seq: number;
    /** Version identity used in claim names: `NONCE-SEQ`, or `x` + digest. */
    ident: string;
    /** Claim-name prefix of every version of this nonce (swept when it ends). */
    sweepPrefix: string;
    mtimeMs: number;
  }
  | {
    kind: "corrupt";
    /** A synthetic record for display and force-release (nonce `corrupt-DIGEST`). */
    record: LockRecord;
    ident: string;
    sweepPrefix: string;
    mtimeMs: number;
    reason: string;
  };

/** Serialises a record for writing. */
export function encodeRecord(r: StoredRecord): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ ...publicRecord(r), seq: r.seq }) + "\n");
}

/**
 * Parses record bytes read for `key`. A record that parses but claims an
 * impossible lease (`lockRecordProblem`: ttl over 24 h, renewal time in the
 * future by the local clock `nowMs`) is corrupt like one that does not parse.
 */
export function decodeRecord(
  key: string,
  bytes: Uint8Array,
  mtimeMs: number,
  nowMs: number = Date.now(),
): RecordState {
  const hex = digest(bytes).slice(0, 32);
  let reason: string | undefined;
  try {
    const parsed = storedLockRecordSchema.safeParse(JSON.parse(new TextDecoder().decode(bytes)));
    if (!parsed.success) {
      reason = `${parsed.error.issues[0].path.join(".") || "root"}: ${
        parsed.error.issues[0].message
      }`;
    } else if (parsed.data.key !== key) {
      reason = `it names key ${JSON.stringify(parsed.data.key)}`;
    } else {
      reason = lockRecordProblem(parsed.data, { nowMs });
      if (reason === undefined) {
        const { seq, ...record } = parsed.data;
        const safe = SAFE_NONCE.test(record.nonce);
        return {
          kind: "ok",
          record,
          seq,
          ident: safe ? `${record.nonce}-${seq}` : `x${hex}`,
          sweepPrefix: safe ? `${record.nonce}-` : `x${hex}`,
          mtimeMs,
        };
      }
    }
  } catch {
    reason = "it is not valid JSON";
  }
  const at = new Date(mtimeMs).toISOString();
  return {
    kind: "corrupt",
    record: {
      key,
      holder: CORRUPT_HOLDER,
      host: "(unknown)",
      pid: 0,
      operation: "unknown",
      acquiredAt: at,
      renewedAt: at,
      ttlMs: CORRUPT_TTL_MS,
      nonce: `corrupt-${hex}`,
    },
    ident: `x${hex}`,
    sweepPrefix: `x${hex}`,
    mtimeMs,
    reason,
  };
}

/**
 * Reads a record file: content and mtime from one open file (records are
 * replaced by rename, so one descriptor sees one version). Null when absent.
 */
export async function readRecord(
  key: string,
  path: string,
  signal?: AbortSignal,
): Promise<RecordState | null> {
  signal?.throwIfAborted();
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (err) {
    if (isNotFound(err)) return null;
    throw fsFail(err, "read lock record", path);
  }
  try {
    const st = await file.stat();
    // A record is small; anything past 64 KiB is garbage and reads as corrupt.
    const buf = new Uint8Array(Math.min(65_536, Math.max(4096, st.size + 1)));
    let total = 0;
    while (total < buf.length) {
      const n = await file.read(buf.subarray(total));
      if (n === null) break;
      total += n;
    }
    const bytes = buf.subarray(0, total);
    return decodeRecord(key, bytes, st.mtime?.getTime() ?? Date.now());
  } catch (err) {
    throw fsFail(err, "read lock record", path);
  } finally {
    file.close();
  }
}

/** Judgement context: this host and pid, and the skew margin of the local clock. */
export interface JudgeContext {
  host: string;
  pid: number;
  skewMarginMs: number;
}

/** Judges a record by the local clock plus skew (the filesystem has no server time). */
export function judgeState(state: RecordState, ctx: JudgeContext): LockInfo {
  const nowMs = Date.now();
  if (state.kind === "ok") {
    return judgeLock(state.record, {
      nowMs,
      skewMarginMs: ctx.skewMarginMs,
      host: ctx.host,
      pid: ctx.pid,
    });
  }
  const info = judgeLock(state.record, {
    nowMs,
    skewMarginMs: ctx.skewMarginMs,
    host: ctx.host,
    pid: ctx.pid,
    renewedAtMs: state.mtimeMs,
  });
  const unchanged = Math.max(0, Math.round((nowMs - state.mtimeMs) / 1000));
  return info.stale
    ? { ...info, staleReason: `corrupt record (${state.reason}) unchanged for ${unchanged}s` }
    : info;
}
