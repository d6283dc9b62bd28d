/**
 * Waiting and pacing helpers: exponential backoff with full jitter, an
 * abortable sleep, a rolling pool of parallel tasks, and one read shared by
 * the callers that asked for it before it was sent.
 *
 * @example
 * ```ts
 * import { Backoff, sleep } from "./async.ts";
 * const backoff = new Backoff({ initialMs: 50, maxMs: 1_000 });
 * await sleep(backoff.next());
 * ```
 * @module
 */

/** Tuning of a {@linkcode Backoff}. */
export interface BackoffOptions {
  /** Upper bound of the first delay (default 50 ms). */
  initialMs?: number;
  /** Upper bound of any delay (default 1 s). */
  maxMs?: number;
  /** Source of randomness in [0, 1) (default `Math.random`). */
  random?: () => number;
}

/**
 * Exponential backoff with full jitter: the n-th delay is uniform in
 * `[1, min(maxMs, initialMs * 2^n)]` milliseconds.
 */
export class Backoff {
  #attempt = 0;
  #initialMs: number;
  #maxMs: number;
  #random: () => number;

  constructor(opts: BackoffOptions = {}) {
    this.#initialMs = Math.max(1, opts.initialMs ?? 50);
    this.#maxMs = Math.max(this.#initialMs, opts.maxMs ?? 1_000);
    this.#random = opts.random ?? Math.random;
  }

  /** The next delay in milliseconds (at least 1). */
  next(): number {
    const cap = Math.min(this.#maxMs, this.#initialMs * 2 ** this.#attempt);
    if (cap < this.#maxMs) this.#attempt++;
    return Math.max(1, Math.floor(this.#random() * cap));
  }

  /** Starts again from the first delay. */
  reset(): void {
    this.#attempt = 0;
  }
}

/**
 * Resolves after `ms` milliseconds; rejects with the signal's reason as soon
 * as `signal` aborts. Leaves no timer behind either way.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A rolling pool: at most `jobs` tasks run at once, and a new one starts as
 * soon as any finishes (no batches waiting for their slowest member).
 *
 * @example
 * ```ts
 * import { runPool } from "./async.ts";
 * const out = await runPool([1, 2, 3], { jobs: 2 }, async (n) => n * 2);
 * console.log(out); // [2, 4, 6]
 * ```
 */
export async function runPool<T, R>(
  items: readonly T[],
  opts: { jobs: number; signal?: AbortSignal },
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      opts.signal?.throwIfAborted();
      const i = next++;
      try {
        results[i] = await fn(items[i], i);
      } catch (error) {
        failed ??= { error };
      }
    }
  };
  const n = Math.max(1, Math.min(opts.jobs, items.length));
  await Promise.all(Array.from({ length: n }, worker));
  if (failed !== undefined) throw failed.error;
  return results;
}

/**
 * One call of `fn` shared by every caller that asked before it was sent:
 * `read()` resolves with the result of a call that started after `read()`
 * was called (never one already in flight). Callers that arrive while a
 * call is in flight wait for it to settle and share the next one, so a
 * burst of callers costs two calls, not one each. The lock manager checks
 * the global lock this way after taking model locks: each check must be
 * sent after its caller's lock was taken.
 *
 * @example
 * ```ts
 * import { SharedRead } from "./async.ts";
 * let calls = 0;
 * const reads = new SharedRead(() => Promise.resolve(++calls));
 * const [a, b] = await Promise.all([reads.read(), reads.read()]);
 * console.log(a, b, calls); // 1 1 1
 * ```
 */
export class SharedRead<T> {
  readonly #fn: () => Promise<T>;
  /** The call not sent yet, which a new caller joins. */
  #next: Promise<T> | undefined;
  /** Settles when the last call sent settles. */
  #inFlight: Promise<unknown> = Promise.resolve();

  constructor(fn: () => Promise<T>) {
    this.#fn = fn;
  }

  /** The result of a call of `fn` sent after this call. */
  read(): Promise<T> {
    if (this.#next !== undefined) return this.#next;
    const next: Promise<T> = this.#inFlight.then(() => {
      // Sent now: whoever asks from here on needs a later call.
      this.#next = undefined;
      const call = this.#fn();
      this.#inFlight = call.catch(() => {});
      return call;
    });
    this.#next = next;
    return next;
  }
}
