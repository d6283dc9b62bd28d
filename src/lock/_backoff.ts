/**
 * Waiting helpers for the lock manager: exponential backoff with full jitter,
 * an abortable sleep, and short duration formatting for messages.
 *
 * @example
 * ```ts
 * import { Backoff, sleep } from "./_backoff.ts";
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

/** Formats a duration for messages: `300ms`, `1s`, `1.5s`, `60s`, `2m30s`. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 120_000) {
    const s = Math.round(ms / 100) / 10;
    return `${s}s`;
  }
  const total = Math.round(ms / 1_000);
  const m = Math.floor(total / 60);
  const s = total % 60;
  return s === 0 ? `${m}m` : `${m}m${s}s`;
}
