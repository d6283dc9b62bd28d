/**
 * A held lock and its renewal loop (SPEC §5, design/locks.md).
 *
 * A {@linkcode Lease} renews its record every ttl/3 by compare-and-swap
 * (`handle.renew(nonce)`). When the provider refuses a renewal
 * (`LeaseLostError`), or no renewal has succeeded before the lease would
 * expire, the lease is lost: its `signal` aborts with a `LeaseLostError` and
 * `assertHeld()` throws, so work stops before its next commit.
 *
 * @example
 * ```ts ignore
 * import { Lease } from "./lease.ts";
 * const handle = provider.lock({ kind: "model", model: { type: "vpc", id: "m1" } });
 * const r = await handle.tryAcquire(request);
 * if (r.acquired) {
 *   const lease = new Lease(handle, r.record, { ttlMs: 30_000 });
 *   try {
 *     lease.assertHeld();
 *     // ... commit ...
 *   } finally {
 *     await lease.release();
 *   }
 * }
 * ```
 * @module
 */
import { DatastoreError, isRetryable, LeaseLostError } from "../errors.ts";
import { logger } from "../log.ts";
import { formatRef } from "../model/ref.ts";
import type { CallOptions } from "../provider/contract.ts";
import type { LockHandle, LockKey, LockRecord } from "./records.ts";
import { formatDuration } from "../duration.ts";
import { Backoff, SharedRead, sleep } from "../async.ts";

/** The name of a lock key: `"global"` or the model's `type/id`. */
export function lockKeyName(key: LockKey): string {
  return key.kind === "global" ? "global" : formatRef(key.model);
}

/**
 * Names a lock for messages: `the global lock` or `the lock on vpc/m1`.
 * Accepts a key or a key name as stored in a lock record.
 */
export function describeLock(key: LockKey | string): string {
  const name = typeof key === "string" ? key : lockKeyName(key);
  return name === "global" ? "the global lock" : `the lock on ${name}`;
}

/** How a lease behaves. */
export interface LeaseOptions {
  /** The lease time of the record; renewal happens every ttl/3. */
  ttlMs: number;
  /** Called once when the lease is lost (not on release). */
  onLost?: (err: LeaseLostError) => void;
  /** Renewal period; defaults to ttl/3. */
  renewEveryMs?: number;
  /**
   * Local time (ms) when the request that produced `record` was sent. The
   * lease counts its expiry from there, which errs on the early side.
   * Defaults to now.
   */
  startedAtMs?: number;
}

type Timer = ReturnType<typeof setTimeout>;

/** Renewals {@linkcode Lease.confirm} tries before it gives up on a failing datastore. */
const CONFIRM_ATTEMPTS = 3;
/** Tries of a release that fails transiently before the record is left to expire. */
const RELEASE_ATTEMPTS = 3;

/**
 * A held lock, renewed every ttl/3 by `handle.renew(nonce)`. If a renewal
 * fails (`LeaseLostError`, or any error until the lease would have expired),
 * the lease is lost: its `signal` aborts with a `LeaseLostError` reason.
 */
export class Lease {
  /** The key this lease holds. */
  readonly key: LockKey;
  #handle: LockHandle;
  #record: LockRecord;
  #ttlMs: number;
  #renewEveryMs: number;
  #onLost?: (err: LeaseLostError) => void;
  #expiresAt: number;
  #lostCtl = new AbortController();
  #renewCtl = new AbortController();
  #tick?: Timer;
  #expiry?: Timer;
  #inflight?: Promise<void>;
  /**
   * The renewals `confirm` sends: one at a time (concurrent compare-and-swaps
   * of the same record by one holder would fail each other), each sent after
   * any renewal already in flight settled, and shared by every caller that
   * asked before it was sent (so each caller's confirmation was sent after
   * its call).
   */
  readonly #confirmations = new SharedRead<unknown>(async () => {
    while (this.#inflight !== undefined) await this.#inflight;
    return await this.#startRenewal();
  });
  #lostError?: LeaseLostError;
  #released?: Promise<void>;

  /** Starts renewing at once; call {@linkcode Lease.release} when done. */
  constructor(handle: LockHandle, record: LockRecord, opts: LeaseOptions) {
    this.key = handle.key;
    this.#handle = handle;
    this.#record = record;
    this.#ttlMs = Math.max(1, opts.ttlMs);
    this.#renewEveryMs = Math.max(1, opts.renewEveryMs ?? Math.floor(this.#ttlMs / 3));
    this.#onLost = opts.onLost;
    this.#expiresAt = (opts.startedAtMs ?? Date.now()) + this.#ttlMs;
    this.#armExpiry();
    this.#scheduleTick();
  }

  /** The record as last acquired or renewed. */
  get record(): LockRecord {
    return this.#record;
  }

  /** Aborts (with a `LeaseLostError` reason) when the lease is lost. */
  get signal(): AbortSignal {
    return this.#lostCtl.signal;
  }

  /** True once the lease is lost. */
  get lost(): boolean {
    return this.#lostError !== undefined;
  }

  /** True once {@linkcode Lease.release} was called. */
  get released(): boolean {
    return this.#released !== undefined;
  }

  /**
   * Throws a `LeaseLostError` (exit 75) when the lease is lost or released.
   * The sync engine calls it before every commit.
   */
  assertHeld(): void {
    this.#checkExpiry();
    if (this.#lostError) throw this.#lostError;
    if (this.#released) {
      throw new LeaseLostError(
        `${capitalise(describeLock(this.key))} was already released; ` +
          `work stopped before committing. Rerun the command.`,
      );
    }
  }

  /**
   * Renews now and throws unless the datastore still carries our record: the
   * sync engine calls it right before a commit, so a holder that lost its
   * lock between two scheduled renewals does not commit. Throws the
   * `LeaseLostError` when the record is gone or carries another nonce, and a
   * `DatastoreError` (exit 6) when no renewal succeeded in a few tries: an
   * unconfirmed lease never commits.
   *
   * The confirmation is always a renewal sent after this call: one already
   * in flight is awaited first but not trusted, since it may have been sent
   * before the caller read what it is about to commit on (found by the model
   * of the lock protocol, `model/locks.pml`). Callers confirming at the same
   * time (the models of one global-path push) share the next renewal: sent
   * one by one, they would race each other's compare-and-swap of the record
   * and lose the lease.
   */
  async confirm(): Promise<void> {
    const backoff = new Backoff({ initialMs: 50, maxMs: 500 });
    for (let attempt = 1;; attempt++) {
      this.assertHeld();
      const failure = await this.#confirmations.read();
      this.assertHeld();
      if (failure === undefined) return;
      if (attempt >= CONFIRM_ATTEMPTS || !isRetryable(failure)) {
        throw new DatastoreError(
          `Could not confirm ${describeLock(this.key)} before committing ` +
            `(${trimPeriod(messageOf(failure))}); nothing was committed. Rerun the command.`,
          { cause: failure },
        );
      }
      await sleep(backoff.next(), this.#renewCtl.signal).catch(() => {});
    }
  }

  /**
   * Stops renewal and releases the record if it still carries our nonce.
   * Idempotent; never throws (a failure is logged: the record then expires
   * on its own within its ttl).
   */
  release(opts: CallOptions = {}): Promise<void> {
    if (this.#released) return this.#released;
    this.#released = this.#doRelease(opts);
    return this.#released;
  }

  async #doRelease(opts: CallOptions): Promise<void> {
    this.#clearTimers();
    this.#renewCtl.abort();
    // Let an in-flight renewal settle first, so it cannot rewrite the record
    // after we removed it.
    if (this.#inflight) await this.#inflight;
    try {
      // A transient failure is tried again: a release whose answer was lost
      // finds the record gone (or not ours) the next time, and stops.
      const backoff = new Backoff({ initialMs: 50, maxMs: 500 });
      for (let attempt = 1;; attempt++) {
        try {
          await this.#handle.release(this.#record.nonce, opts);
          break;
        } catch (err) {
          if (attempt >= RELEASE_ATTEMPTS || !isRetryable(err) || opts.signal?.aborted) throw err;
          await sleep(backoff.next(), opts.signal).catch(() => {});
        }
      }
    } catch (err) {
      logger("lock").warn(
        "Could not release {lock} ({error}); it expires on its own within {ttl}.",
        { lock: describeLock(this.key), error: messageOf(err), ttl: formatDuration(this.#ttlMs) },
      );
    }
  }

  get #done(): boolean {
    return this.#released !== undefined || this.#lostError !== undefined;
  }

  #scheduleTick(): void {
    this.#tick = setTimeout(() => {
      this.#tick = undefined;
      if (this.#done) return;
      if (this.#inflight === undefined) void this.#startRenewal();
      this.#scheduleTick();
    }, this.#renewEveryMs);
  }

  #armExpiry(): void {
    if (this.#expiry !== undefined) clearTimeout(this.#expiry);
    this.#expiry = setTimeout(() => {
      this.#expiry = undefined;
      this.#lose(`it was not renewed within its ${formatDuration(this.#ttlMs)} ttl`);
    }, Math.max(0, this.#expiresAt - Date.now()));
  }

  /** One renewal, tracked as the one in flight; resolves to its failure, if any. */
  #startRenewal(): Promise<unknown> {
    const run = this.#renewOnce();
    const settled: Promise<void> = run.then(() => {
      if (this.#inflight === settled) this.#inflight = undefined;
    });
    this.#inflight = settled;
    return run;
  }

  /**
   * Loses the lease once its expiry has passed by the local clock, whether
   * or not the expiry timer has run: after a pause (SIGSTOP, a suspended
   * VM, a long GC) the overdue renewal tick may run first, and others may
   * have acted on the expiry meanwhile without replacing the record (a
   * scoped writer ignores a stale global lock). A lease is never revived.
   */
  #checkExpiry(): void {
    if (this.#done || Date.now() < this.#expiresAt) return;
    this.#lose(`it was not renewed within its ${formatDuration(this.#ttlMs)} ttl`);
  }

  /** Renews once; never rejects: resolves to the error when the renewal failed. */
  async #renewOnce(): Promise<unknown> {
    this.#checkExpiry();
    if (this.#done) return this.#lostError;
    const sentAt = Date.now();
    const expiresAt = this.#expiresAt;
    try {
      const record = await this.#handle.renew(this.#record.nonce, {
        signal: this.#renewCtl.signal,
      });
      if (this.#done) return undefined;
      // A renewal that lands after the expiry comes too late: the record
      // could be judged stale before it was written.
      if (Date.now() >= expiresAt) {
        this.#checkExpiry();
        return this.#lostError;
      }
      this.#record = record;
      this.#expiresAt = sentAt + this.#ttlMs;
      this.#armExpiry();
      return undefined;
    } catch (err) {
      if (this.#done) return err;
      if (err instanceof LeaseLostError) {
        // The provider's message says how: released by force, or taken over.
        this.#lose({ sentence: err.message }, err);
        return err;
      }
      const left = this.#expiresAt - Date.now();
      if (left <= 0) {
        this.#lose(`renewal failed until it expired: ${trimPeriod(messageOf(err))}`, err);
        return err;
      }
      logger("lock").warn(
        "Could not renew {lock} ({error}); retrying for up to {left} before giving it up.",
        { lock: describeLock(this.key), error: messageOf(err), left: formatDuration(left) },
      );
      return err;
    }
  }

  /**
   * Loses the lease. `reason` is a clause ("it was not renewed within its
   * 30s ttl"), or a whole sentence from the provider (which says whether the
   * lock was released by force or taken over).
   */
  #lose(reason: string | { sentence: string }, cause?: unknown): void {
    if (this.#done) return;
    const message = typeof reason !== "string"
      ? reason.sentence
      : `Lost ${
        describeLock(this.key)
      }: ${reason}; work stopped before committing. Rerun the command.`;
    const err = new LeaseLostError(message, cause === undefined ? {} : { cause });
    this.#lostError = err;
    this.#clearTimers();
    this.#renewCtl.abort(err);
    // The sync report carries it as the model's error (one line, not two).
    logger("lock").debug("{message}", { message: err.message });
    this.#lostCtl.abort(err);
    try {
      this.#onLost?.(err);
    } catch (cbErr) {
      logger("lock").error("onLost callback failed: {error}", { error: messageOf(cbErr) });
    }
  }

  #clearTimers(): void {
    if (this.#tick !== undefined) clearTimeout(this.#tick);
    if (this.#expiry !== undefined) clearTimeout(this.#expiry);
    this.#tick = undefined;
    this.#expiry = undefined;
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function trimPeriod(s: string): string {
  return s.replace(/\.\s*$/, "");
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
