/**
 * Lock records over a provider's records (SPEC §5, design/locks.md): the
 * lease protocol written once for every datastore.
 *
 * A lock is the record `leases/global` or `leases/models/TYPE/ID` holding a
 * JSON {@linkcode LockRecord}. Every change is a compare-and-swap on the
 * record's version: a free key is created if absent; a stale record is taken
 * over by replacing exactly the version judged stale (never a blind delete);
 * renew, release and force release act only on a record that still carries
 * the holder's nonce, and only on the version last seen. Of two contenders
 * for one stale lock exactly one replace succeeds.
 *
 * @example
 * ```ts ignore
 * import { RecordLocks } from "./records.ts";
 * const locks = new RecordLocks(provider, { host: "h", pid: 1, skewMarginMs: 5_000, caps });
 * const r = await locks.handle({ kind: "global" }).tryAcquire(request);
 * ```
 * @module
 */
import { randomBytes } from "node:crypto";
import { DatastoreError, LeaseLostError } from "../errors.ts";
import { formatRef, type ModelRef, parseModelRef } from "../model/ref.ts";
import type { CallOptions, Capabilities, Provider, StoredRecord } from "../provider/contract.ts";
import { publicRecord, storedLockRecordSchema } from "../provider/lock_schema.ts";
import { describeHolder, judgeLock, lockRecordProblem } from "../provider/stale.ts";
import { listAllRecords } from "../provider/keys.ts";

/** The lock keys: the global key, or one model. */
export type LockKey = { kind: "global" } | { kind: "model"; model: ModelRef };

/** Who asks for a lock. */
export interface LockRequest {
  holder: string;
  host: string;
  pid: number;
  operation: string;
  ttlMs: number;
  /** The repository the holder works in, shown by `lock status`. */
  repo?: string;
}

/** A lock record as stored in the datastore. */
export interface LockRecord {
  /** `"global"` or the model's `type/id`. */
  key: string;
  holder: string;
  host: string;
  pid: number;
  operation: string;
  /** ISO timestamps. */
  acquiredAt: string;
  renewedAt: string;
  ttlMs: number;
  /** Random per acquisition; release and force-release check it. */
  nonce: string;
  repo?: string;
}

/** A lock record with its judgement. */
export interface LockInfo {
  record: LockRecord;
  /** Expired (by the store's clock, or the local clock plus a skew margin) or same host and pid gone. */
  stale: boolean;
  /** Why it is stale, e.g. "expired 12s ago" or "pid 4242 on this host is gone". */
  staleReason?: string;
  /** Milliseconds since acquiredAt. */
  ageMs: number;
  /** Milliseconds until expiry; negative when expired. */
  ttlLeftMs: number;
}

/** Outcome of one attempt to take a lock. */
export type AcquireResult =
  | { acquired: true; record: LockRecord; tookOver?: LockRecord }
  | { acquired: false; current: LockInfo };

/** One lock key in one datastore. */
export interface LockHandle {
  readonly key: LockKey;
  /**
   * Tries once, without waiting. A free key is created exclusively; a stale
   * record is taken over by compare-and-swap (never a blind delete) and
   * reported in `tookOver`; a live record is returned in `current`.
   */
  tryAcquire(req: LockRequest, opts?: CallOptions): Promise<AcquireResult>;
  /** Extends the lease; throws `LeaseLostError` when the record is gone or carries another nonce. */
  renew(nonce: string, opts?: CallOptions): Promise<LockRecord>;
  /** Releases the lock when it still carries `nonce`; otherwise does nothing. */
  release(nonce: string, opts?: CallOptions): Promise<void>;
  /** The current record with its judgement, or null when free. */
  inspect(opts?: CallOptions): Promise<LockInfo | null>;
  /** Deletes the record only when it still carries `nonce`; false when the holder changed or it is free. */
  forceRelease(nonce: string, opts?: CallOptions): Promise<boolean>;
}

/** The record key of a lock: `leases/global` or `leases/models/TYPE/ID`. */
export function lockRecordKey(key: LockKey): string {
  return key.kind === "global"
    ? "leases/global"
    : `leases/models/${key.model.type}/${key.model.id}`;
}

/** The lock key of a record key, or undefined for anything else under `leases/`. */
export function lockKeyOf(recordKey: string): LockKey | undefined {
  if (recordKey === "leases/global") return { kind: "global" };
  if (!recordKey.startsWith("leases/models/")) return undefined;
  try {
    return { kind: "model", model: parseModelRef(recordKey.slice("leases/models/".length)) };
  } catch {
    return undefined;
  }
}

function keyName(key: LockKey): string {
  return key.kind === "global" ? "global" : formatRef(key.model);
}

/** A corrupt record is stale once unchanged for this long (plus the margin). */
export const CORRUPT_TTL_MS = 30_000;
/** Holder shown for a record that cannot be parsed. */
export const CORRUPT_HOLDER = "unknown (corrupt record)";
const ATTEMPTS = 4;

/** How to judge records: this host, the skew margin, the store's clock. */
export interface RecordLocksOptions {
  host: string;
  pid: number;
  /** Added before a record judged by the local clock is stale. */
  skewMarginMs: number;
  caps: Pick<Capabilities, "serverTime" | "clockResolutionMs">;
}

/** A record as read: parsed (or a synthetic one for a corrupt record) and judged. */
interface Seen {
  info: LockInfo;
  version: string;
  corrupt: boolean;
}

/** The lease protocol over one provider's records. */
export class RecordLocks {
  readonly #p: Provider;
  readonly #opts: RecordLocksOptions;
  /** Version of the record each of our holdings last wrote, by nonce. */
  readonly #versions = new Map<string, string>();

  constructor(provider: Provider, opts: RecordLocksOptions) {
    this.#p = provider;
    this.#opts = opts;
  }

  /** A handle on one lock key. Cheap; does no I/O. */
  handle(key: LockKey): LockHandle {
    const rk = lockRecordKey(key);
    const name = keyName(key);
    return {
      key,
      tryAcquire: (req, opts) => this.#acquire(rk, name, req, opts),
      renew: (nonce, opts) => this.#renew(rk, name, nonce, opts),
      release: (nonce, opts) => this.#release(rk, name, nonce, opts),
      inspect: async (opts) => (await this.#read(rk, name, opts))?.info ?? null,
      forceRelease: (nonce, opts) => this.#forceRelease(rk, name, nonce, opts),
    };
  }

  /** Every lock record (global and per model) with its judgement. */
  async list(opts: CallOptions = {}): Promise<LockInfo[]> {
    const keys = (await listAllRecords(this.#p, "leases/", opts))
      .map((r) => ({ rk: r.key, key: lockKeyOf(r.key) }))
      .filter((k): k is { rk: string; key: LockKey } => k.key !== undefined);
    const out: LockInfo[] = [];
    let next = 0;
    const worker = async () => {
      while (next < keys.length) {
        const { rk, key } = keys[next++];
        const seen = await this.#read(rk, keyName(key), opts);
        if (seen !== null) out.push(seen.info);
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, keys.length) }, worker));
    return out.sort((a, b) => (a.record.key < b.record.key ? -1 : 1));
  }

  async #read(rk: string, name: string, opts?: CallOptions): Promise<Seen | null> {
    const stored = await this.#p.getRecord(rk, opts);
    return stored === null ? null : this.#judge(name, stored);
  }

  #judge(name: string, stored: StoredRecord): Seen {
    const byStore = this.#opts.caps.serverTime && stored.storeNowMs !== undefined &&
      stored.modifiedMs !== undefined;
    const judge = (record: LockRecord, renewedAtMs?: number) =>
      judgeLock(record, {
        nowMs: byStore ? stored.storeNowMs! : Date.now(),
        skewMarginMs: byStore ? (this.#opts.caps.clockResolutionMs ?? 0) : this.#opts.skewMarginMs,
        host: this.#opts.host,
        pid: this.#opts.pid,
        ...(byStore ? { renewedAtMs: stored.modifiedMs } : {}),
        ...(renewedAtMs === undefined ? {} : { renewedAtMs }),
      });
    let reason: string | undefined;
    try {
      const parsed = storedLockRecordSchema.safeParse(
        JSON.parse(new TextDecoder().decode(stored.bytes)),
      );
      if (!parsed.success) {
        reason = `${parsed.error.issues[0].path.join(".") || "root"}: ${
          parsed.error.issues[0].message
        }`;
      } else if (parsed.data.key !== name) {
        reason = `it names key ${JSON.stringify(parsed.data.key)}`;
      } else {
        // A record claiming an impossible lease is corrupt, not a lock held for years.
        reason = lockRecordProblem(parsed.data, {
          nowMs: byStore ? stored.storeNowMs! : Date.now(),
          ...(byStore ? { renewedAtMs: stored.modifiedMs } : {}),
        });
        if (reason === undefined) {
          return {
            info: judge(publicRecord(parsed.data)),
            version: stored.version,
            corrupt: false,
          };
        }
      }
    } catch {
      reason = "it is not valid JSON";
    }
    // A record nobody can parse: held by "unknown" since it was written, and
    // stale once unchanged for CORRUPT_TTL_MS, so a record caught half-way by
    // an odd store is never stolen at once.
    const writtenMs = stored.modifiedMs ?? Date.now();
    const at = new Date(writtenMs).toISOString();
    const record: LockRecord = {
      key: name,
      holder: CORRUPT_HOLDER,
      host: "?",
      pid: 0,
      operation: "?",
      acquiredAt: at,
      renewedAt: at,
      ttlMs: CORRUPT_TTL_MS,
      nonce: `corrupt-${stored.version.replace(/[^A-Za-z0-9]/g, "").slice(0, 40)}`,
    };
    const info = judge(record, writtenMs);
    if (info.stale) info.staleReason = `corrupt record (${reason}), ${info.staleReason}`;
    return { info, version: stored.version, corrupt: true };
  }

  async #acquire(
    rk: string,
    name: string,
    req: LockRequest,
    opts?: CallOptions,
  ): Promise<AcquireResult> {
    const now = new Date().toISOString();
    const record: LockRecord = {
      key: name,
      holder: req.holder,
      host: req.host,
      pid: req.pid,
      operation: req.operation,
      acquiredAt: now,
      renewedAt: now,
      ttlMs: req.ttlMs,
      nonce: randomBytes(16).toString("hex"),
      ...(req.repo === undefined ? {} : { repo: req.repo }),
    };
    const bytes = encode(record);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const created = await this.#p.createRecord(rk, bytes, opts);
      if (created !== null) {
        this.#versions.set(record.nonce, created);
        this.#last.set(record.nonce, record);
        return { acquired: true, record };
      }
      const seen = await this.#read(rk, name, opts);
      if (seen === null) continue; // released meanwhile
      if (!seen.info.stale) return { acquired: false, current: seen.info };
      const replaced = await this.#p.replaceRecord(rk, bytes, seen.version, opts);
      if (replaced !== null) {
        this.#versions.set(record.nonce, replaced);
        this.#last.set(record.nonce, record);
        return { acquired: true, record, tookOver: seen.info.record };
      }
      // Another contender changed it first: look again.
    }
    throw new DatastoreError(
      `The record of ${name === "global" ? "the global lock" : `the lock on ${name}`} kept ` +
        `changing while it was being taken; retrying.`,
      { retryable: true },
    );
  }

  /** Our record and its version, or the reason it is not ours any more. */
  async #ours(rk: string, name: string, nonce: string, opts?: CallOptions) {
    const seen = await this.#read(rk, name, opts);
    if (seen === null) return { lost: "it was released by force (its record is gone)" };
    if (seen.corrupt || seen.info.record.nonce !== nonce) {
      return { lost: `it was taken over by ${describeHolder(seen.info.record)}` };
    }
    return { record: seen.info.record, version: seen.version };
  }

  async #renew(rk: string, name: string, nonce: string, opts?: CallOptions): Promise<LockRecord> {
    let version = this.#versions.get(nonce);
    let base = this.#last.get(nonce);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (version === undefined || base === undefined) {
        const got = await this.#ours(rk, name, nonce, opts);
        if (got.lost !== undefined) throw lostError(name, got.lost);
        version = got.version;
        base = got.record;
      }
      const renewed = { ...base, renewedAt: new Date().toISOString() };
      const v = await this.#p.replaceRecord(rk, encode(renewed), version, opts);
      if (v !== null) {
        this.#versions.set(nonce, v);
        this.#last.set(nonce, renewed);
        return renewed;
      }
      // Changed since we wrote it: still ours (an answer of ours was lost), or lost.
      version = undefined;
    }
    throw lostError(name, "its record kept changing while it was renewed");
  }

  /** The record each of our holdings last wrote, by nonce. */
  readonly #last = new Map<string, LockRecord>();

  async #release(rk: string, name: string, nonce: string, opts?: CallOptions): Promise<void> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      let version = attempt === 0 ? this.#versions.get(nonce) : undefined;
      if (version === undefined) {
        const got = await this.#ours(rk, name, nonce, opts);
        if (got.lost !== undefined) break; // not ours: nothing to release
        version = got.version;
      }
      if (await this.#p.deleteRecord(rk, version, opts)) break;
    }
    this.#versions.delete(nonce);
    this.#last.delete(nonce);
  }

  async #forceRelease(
    rk: string,
    name: string,
    nonce: string,
    opts?: CallOptions,
  ): Promise<boolean> {
    const seen = await this.#read(rk, name, opts);
    if (seen === null || seen.info.record.nonce !== nonce) return false;
    return await this.#p.deleteRecord(rk, seen.version, opts);
  }
}

function encode(record: LockRecord): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(record) + "\n");
}

function lostError(name: string, why: string): LeaseLostError {
  const lock = name === "global" ? "the global lock" : `the lock on ${name}`;
  return new LeaseLostError(
    `Lost ${lock}: ${why}; work stopped before committing. Rerun the command.`,
  );
}
