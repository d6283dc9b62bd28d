/**
 * A rolling pool: at most `jobs` tasks run at once, and a new one starts as
 * soon as any finishes (no batches waiting for their slowest member).
 *
 * @example
 * ```ts
 * import { runPool } from "./pool.ts";
 * const out = await runPool([1, 2, 3], { jobs: 2 }, async (n) => n * 2);
 * console.log(out); // [2, 4, 6]
 * ```
 * @module
 */

/** Runs `fn` over `items` with at most `opts.jobs` in flight; results keep input order. Rejects with the first error after in-flight tasks settle. */
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

/** Sleeps `ms`, waking early with the signal's reason when it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
