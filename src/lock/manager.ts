/**
 * The lock manager (SPEC §5, design/locks.md): runs work on a set of models
 * under the right locks.
 *
 * - Scoped path (`caps.scopedSync`): each model under its own lock, at most
 *   `jobs` at a time. After taking a model lock the global lock is checked,
 *   by one read shared by every worker that took its lock before that read
 *   was sent; when it is held the model lock is released and the worker
 *   backs off (and checks the global lock before its next try), so a worker
 *   never waits while holding a lock.
 * - Global path: the global lock, then a drain until no live model lock
 *   remains, then every model under that one lease.
 *
 * Per-model failures come back as outcomes, never as exceptions.
 *
 * @example
 * ```ts ignore
 * import { LockManager } from "./manager.ts";
 * const manager = new LockManager({
 *   provider, caps, holder: { holder: "ci", host: "build-3", pid: Deno.pid },
 *   operation: "push", lockTimeoutMs: 60_000, ttlMs: 30_000,
 * });
 * const outcomes = await manager.run(models, async (model, { lease, signal }) => {
 *   // ... read the head and merge with `signal` (blobs were uploaded before) ...
 *   await lease.confirm();
 *   // ... commit ...
 * }, { jobs: 4 });
 * ```
 * @module
 */
import { InterruptedError, isRetryable, LockTimeoutError } from "../errors.ts";
import { logger } from "../log.ts";
import { formatRef, type ModelRef, sortUniqueRefs } from "../model/ref.ts";
import type { CallOptions, Capabilities } from "../provider/contract.ts";
import type {
  AcquireResult,
  LockHandle,
  LockInfo,
  LockKey,
  LockRecord,
  LockRequest,
} from "./records.ts";
import { describeHolder, judgeLock, SKEW_MARGIN_MS } from "../provider/stale.ts";
import { Backoff, runPool, SharedRead, sleep } from "../async.ts";
import { formatDuration } from "../duration.ts";
import { describeLock, Lease, lockKeyName } from "./lease.ts";

/** Default lease time of a lock record. */
export const DEFAULT_TTL_MS = 30_000;
/** Default `--lock-timeout`. */
export const DEFAULT_LOCK_TIMEOUT_MS = 60_000;
/** Added to a record's ttl before the local clock calls it stale (defined with judgeLock). */
export { SKEW_MARGIN_MS };

/** Which locks a run takes: per model, or one global lock. */
export type LockPath = "scoped" | "global";

/** Where the lock manager takes locks: a datastore's lock records. */
export interface LockSource {
  lock(key: LockKey): LockHandle;
  listLocks(opts?: CallOptions): Promise<LockInfo[]>;
}

/** Everything a lock manager needs. */
export interface LockManagerOptions {
  provider: LockSource;
  /** Already read once by the caller (`readCapabilities`). */
  caps: Capabilities;
  /** Who we are, as written into lock records. */
  holder: { holder: string; host: string; pid: number; repo?: string };
  /** `"push"`, `"pull"`, `"flush"`, ... */
  operation: string;
  /** How long to wait for one lock (and the drain), from when the wait began. */
  lockTimeoutMs: number;
  /** Lease time of our records; renewed every ttl/3. */
  ttlMs: number;
  /** Aborted when the command is interrupted or runs past `--timeout`. */
  signal?: AbortSignal;
}

/** The result of the work on one model. */
export type ModelOutcome<T> =
  | { model: ModelRef; ok: true; value: T }
  | { model: ModelRef; ok: false; error: unknown };

/** What the work on one model receives. */
export interface WorkContext {
  /** The lease the work runs under (the model's, or the global one). */
  lease: Lease;
  /** Aborts when the lease is lost or the run is interrupted. */
  signal: AbortSignal;
}

/** The work to do on one model. */
export type ModelWork<T> = (model: ModelRef, ctx: WorkContext) => Promise<T>;

const GLOBAL: LockKey = { kind: "global" };
/**
 * Consecutive transient datastore faults (after the guard's own retries)
 * that end a lock wait before its deadline: a datastore that is down fails
 * the command in seconds, not after the whole --lock-timeout.
 */
const MAX_FAULTS = 4;

/** One attempt at something a lock may block: done, or blocked by a holder. */
type Attempt<T> = { ok: true; value: T } | { ok: false; name: string; record: LockRecord };

/** Takes locks for a run and runs the work under them. */
export class LockManager {
  #opts: LockManagerOptions;
  #request: LockRequest;
  #stop = new AbortController();
  #signal: AbortSignal;
  #leases = new Set<Lease>();
  #waitedOn = new Set<string>();
  /** Reads of the global lock, each shared by the workers that took a model lock before it. */
  #globalCheck: SharedRead<LockInfo | null>;

  constructor(opts: LockManagerOptions) {
    this.#opts = { ...opts };
    this.#request = { ...opts.holder, operation: opts.operation, ttlMs: opts.ttlMs };
    this.#signal = opts.signal === undefined
      ? this.#stop.signal
      : AbortSignal.any([opts.signal, this.#stop.signal]);
    const global = opts.provider.lock(GLOBAL);
    this.#globalCheck = new SharedRead(() => global.inspect({ signal: this.#signal }));
  }

  /** `"scoped"` iff the datastore declared (and kept) `scopedSync`. */
  get path(): LockPath {
    return this.#opts.caps.scopedSync ? "scoped" : "global";
  }

  /**
   * Runs `work` on each model (sorted, duplicates dropped) under the locks of
   * {@linkcode LockManager.path}, at most `jobs` at a time. Returns one outcome
   * per model in sorted order; never throws for a model's failure.
   */
  async run<T>(
    models: ModelRef[],
    work: ModelWork<T>,
    opts: { jobs: number },
  ): Promise<ModelOutcome<T>[]> {
    const sorted = sortUniqueRefs(models);
    const out: ModelOutcome<T>[] = new Array(sorted.length);
    const jobs = Math.max(1, Math.floor(opts.jobs) || 1);
    if (sorted.length === 0) return out;
    if (this.path === "scoped") {
      await runPool(sorted, { jobs }, async (model, i) => {
        out[i] = await this.#runScoped(model, work);
      });
    } else {
      await this.#runGlobal(sorted, work, { jobs, out });
    }
    return out;
  }

  /**
   * Releases every lease this manager holds now and stops further waiting
   * and acquiring (for SIGINT/SIGTERM handlers). Never throws.
   */
  async releaseAll(): Promise<void> {
    if (!this.#stop.signal.aborted) {
      this.#stop.abort(
        new InterruptedError("Interrupted; released every lock this run held. Rerun the command."),
      );
    }
    const leases = [...this.#leases];
    this.#leases.clear();
    await Promise.all(leases.map((l) => l.release()));
  }

  async #runScoped<T>(model: ModelRef, work: ModelWork<T>): Promise<ModelOutcome<T>> {
    if (this.#signal.aborted) return { model, ok: false, error: this.#interrupted(model) };
    const deadline = Date.now() + this.#opts.lockTimeoutMs;
    let lease: Lease;
    try {
      lease = await this.#waitFor(deadline, this.#scopedAttempt(model));
    } catch (err) {
      return { model, ok: false, error: this.#waitError(err, model) };
    }
    try {
      const signal = AbortSignal.any([lease.signal, this.#signal]);
      return { model, ok: true, value: await work(model, { lease, signal }) };
    } catch (error) {
      return { model, ok: false, error };
    } finally {
      await this.#drop(lease);
    }
  }

  /**
   * Model lock → global free (a read sent after the lock was taken, shared
   * with the other workers that took theirs before it); else release and
   * report the holder. After a failed try, the global lock is checked first
   * too, so a worker does not take and drop its model lock over and over
   * while a global holder drains.
   */
  #scopedAttempt(model: ModelRef): () => Promise<Attempt<Lease>> {
    const global = this.#opts.provider.lock(GLOBAL);
    const handle = this.#opts.provider.lock({ kind: "model", model });
    let retry = false;
    return async () => {
      if (retry) {
        const before = await global.inspect({ signal: this.#signal });
        if (before !== null && !before.stale) return blocked("global", before.record);
      }
      retry = true;
      const got = await this.#tryTake(handle);
      if (!got.ok) return got;
      let after;
      try {
        after = await this.#globalCheck.read();
      } catch (err) {
        await this.#drop(got.value);
        throw err;
      }
      if (after !== null && !after.stale) {
        await this.#drop(got.value);
        return blocked("global", after.record);
      }
      return got;
    };
  }

  async #runGlobal<T>(
    models: ModelRef[],
    work: ModelWork<T>,
    opts: { jobs: number; out: ModelOutcome<T>[] },
  ): Promise<void> {
    const { out } = opts;
    let held: Lease;
    try {
      held = await this.#takeGlobal();
    } catch (err) {
      models.forEach((model, i) => {
        out[i] = { model, ok: false, error: this.#waitError(err, model) };
      });
      return;
    }
    try {
      const signal = AbortSignal.any([held.signal, this.#signal]);
      await runPool(models, { jobs: opts.jobs }, async (model, i) => {
        try {
          if (this.#signal.aborted) throw this.#interrupted(model);
          held.assertHeld();
          out[i] = { model, ok: true, value: await work(model, { lease: held, signal }) };
        } catch (error) {
          out[i] = { model, ok: false, error };
        }
      });
    } finally {
      await this.#drop(held);
    }
  }

  /**
   * Runs `work` once under the global lock, after the drain (no live model
   * lock remains), whatever the capabilities say: for maintenance of the
   * whole datastore (`gc`). Throws what the wait throws (`LockTimeoutError`,
   * an interrupt) or what `work` throws; the lock is released either way.
   */
  async runExclusive<T>(work: (ctx: WorkContext) => Promise<T>): Promise<T> {
    const held = await this.#takeGlobal();
    try {
      held.assertHeld();
      return await work({ lease: held, signal: AbortSignal.any([held.signal, this.#signal]) });
    } finally {
      await this.#drop(held);
    }
  }

  /** The global lock, then the drain, within one --lock-timeout. */
  async #takeGlobal(): Promise<Lease> {
    const handle = this.#opts.provider.lock(GLOBAL);
    const deadline = Date.now() + this.#opts.lockTimeoutMs;
    let lease: Lease | undefined;
    try {
      if (this.#signal.aborted) throw this.#signal.reason;
      lease = await this.#waitFor(deadline, () => this.#tryTake(handle));
      const held = lease;
      await this.#waitFor(deadline, () => this.#drainAttempt(held));
      return held;
    } catch (err) {
      if (lease !== undefined) await this.#drop(lease);
      throw err;
    }
  }

  /** Done when no live model lock remains (stale ones are ignored). */
  async #drainAttempt(lease: Lease): Promise<Attempt<undefined>> {
    lease.assertHeld();
    const locks = await this.#opts.provider.listLocks({ signal: this.#signal });
    const live = locks
      .filter((l) => !l.stale && l.record.key !== "global")
      .sort((a, b) => (a.record.key < b.record.key ? -1 : a.record.key > b.record.key ? 1 : 0));
    if (live.length === 0) return { ok: true, value: undefined };
    return blocked(live[0].record.key, live[0].record);
  }

  /** One try at a lock; a taken-over stale record is logged. */
  async #tryTake(handle: LockHandle): Promise<Attempt<Lease>> {
    const startedAtMs = Date.now();
    let r: AcquireResult = await handle.tryAcquire(this.#request, { signal: this.#signal });
    if (!r.acquired && this.#isOrphanOfOurs(handle.key, r.current.record)) {
      // An earlier attempt of this process created the record but its answer
      // was lost (the call's deadline fired): nobody holds it, so remove it by
      // its nonce and try again at once.
      await handle.forceRelease(r.current.record.nonce, { signal: this.#signal });
      r = await handle.tryAcquire(this.#request, { signal: this.#signal });
    }
    if (!r.acquired) return blocked(lockKeyName(handle.key), r.current.record);
    if (r.tookOver !== undefined) this.#logTakeover(handle.key, r.tookOver);
    const lease = new Lease(handle, r.record, { ttlMs: this.#opts.ttlMs, startedAtMs });
    this.#leases.add(lease);
    if (this.#signal.aborted) {
      await this.#drop(lease);
      throw this.#signal.reason;
    }
    return { ok: true, value: lease };
  }

  /** True for a record with our host and pid that none of our leases holds. */
  #isOrphanOfOurs(key: LockKey, record: LockRecord): boolean {
    const { host, pid } = this.#opts.holder;
    if (record.host !== host || record.pid !== pid) return false;
    const name = lockKeyName(key);
    return ![...this.#leases].some((l) => lockKeyName(l.key) === name);
  }

  /**
   * Repeats `attempt` with backoff and jitter while a live holder blocks it,
   * until `deadline`. Retryable datastore errors are retried too.
   */
  async #waitFor<T>(deadline: number, attempt: () => Promise<Attempt<T>>): Promise<T> {
    const backoff = new Backoff({ initialMs: 50, maxMs: 1_000 });
    let faults = 0;
    for (;;) {
      this.#signal.throwIfAborted();
      let last: Attempt<T> | undefined;
      let failure: unknown;
      try {
        last = await attempt();
        faults = 0;
        if (last.ok) return last.value;
        this.#noteWait(last.name, last.record);
      } catch (err) {
        // A busy lock is waited for until the deadline; a datastore that
        // keeps failing is not: it fails the wait after a few attempts.
        if (this.#signal.aborted || !isRetryable(err) || ++faults >= MAX_FAULTS) throw err;
        failure = err;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        if (last !== undefined && !last.ok) throw this.#timeoutError(last.name, last.record);
        throw failure;
      }
      await sleep(Math.min(backoff.next(), left), this.#signal);
    }
  }

  #noteWait(name: string, record: LockRecord): void {
    if (this.#waitedOn.has(name)) return;
    this.#waitedOn.add(name);
    logger("lock").warn("Waiting for {lock}: held by {holder}.", {
      lock: describeLock(name),
      holder: describeHolder(record),
      key: name,
    });
  }

  #logTakeover(key: LockKey, old: LockRecord): void {
    const judged = judgeLock(old, {
      nowMs: Date.now(),
      skewMarginMs: 0,
      host: this.#opts.holder.host,
      pid: this.#opts.holder.pid,
    });
    const name = lockKeyName(key);
    logger("lock").warn("Took over the stale {lock} from {holder}: {reason}.", {
      lock: name === "global" ? "global lock" : `lock on ${name}`,
      holder: describeHolder(old),
      reason: judged.staleReason ?? "it was stale",
      key: name,
    });
  }

  #timeoutError(name: string, record: LockRecord): LockTimeoutError {
    const target = name === "global" ? "--global" : name;
    return new LockTimeoutError(
      `Timed out after ${formatDuration(this.#opts.lockTimeoutMs)} waiting for ` +
        `${describeLock(name)}, held by ${describeHolder(record)}. Retry later, ` +
        `raise --lock-timeout, or if that process is gone run ` +
        `"modelsync lock release --force ${target}".`,
    );
  }

  /** An error raised while waiting, as the model's outcome. */
  #waitError(err: unknown, model: ModelRef): unknown {
    return this.#signal.aborted ? this.#interrupted(model) : err;
  }

  #interrupted(model: ModelRef): Error {
    const reason: unknown = this.#signal.reason;
    if (reason instanceof Error) return reason;
    return new InterruptedError(
      `Interrupted before ${formatRef(model)} was synced; nothing was committed for it. ` +
        `Rerun the command.`,
      reason === undefined ? {} : { cause: reason },
    );
  }

  async #drop(lease: Lease): Promise<void> {
    this.#leases.delete(lease);
    await lease.release();
  }
}

function blocked<T>(name: string, record: LockRecord): Attempt<T> {
  return { ok: false, name, record };
}
