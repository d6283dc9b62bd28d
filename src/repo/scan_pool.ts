/**
 * Scanning many models on several threads. A no-op push of a large
 * repository is one `lstat` per file, and in Deno those calls run on one
 * thread; Web Workers, each scanning a share of the models with the same
 * {@linkcode scanModel}, use every core (as git's threaded index refresh
 * does). The result of each model is exactly what the main thread would have
 * computed: a worker runs the same `readBase` and `scanModel`. A model whose
 * scan failed in a worker, or that no worker reached, is left out, and the
 * caller scans it in-process, which also reports its error.
 *
 * @example
 * ```ts
 * import { scanInWorkers } from "./scan_pool.ts";
 * import { unpackScan } from "./packed_scan.ts";
 * const repo = await Deno.makeTempDir();
 * await Deno.mkdir(`${repo}/models/vpc/m1`, { recursive: true });
 * await Deno.writeTextFile(`${repo}/models/vpc/m1/a.txt`, "hi");
 * const out = await scanInWorkers(repo, [{ type: "vpc", id: "m1" }], {
 *   dataDir: "models", exclude: [], workers: 1,
 * });
 * const r = out.get("vpc/m1");
 * console.log(r?.kind === "scanned" ? unpackScan(r.scan).changes.added : r?.kind); // ["a.txt"]
 * await Deno.remove(repo, { recursive: true });
 * ```
 * @module
 */
import type { BaseState } from "../model/base.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import type { PackedScan } from "./packed_scan.ts";
import type { SymlinkMode } from "./scan.ts";

/** What a worker found for one model. */
export type Prescan =
  /** The model exists and matches its base exactly; no file was read, nothing skipped or unsyncable. */
  | { kind: "unchanged"; model: ModelRef; generation: number; version: string; files: number }
  /**
   * Anything else: the base and the full scan, as `readBase` and `scanModel`
   * return them, the scan packed (`unpackScan` restores it).
   */
  | { kind: "scanned"; model: ModelRef; base: BaseState | null; scan: PackedScan }
  /** Reading the base or scanning failed: scan it again in-process for the error. */
  | { kind: "failed"; model: ModelRef };

/** First message to a worker. @internal */
export interface WorkerSetup {
  kind: "setup";
  repoDir: string;
  dataDir: string;
  exclude: string[];
  symlinks: SymlinkMode;
  hashConcurrency: number;
}

/** A share of the models for one worker. @internal */
export interface WorkerJob {
  kind: "job";
  models: ModelRef[];
}

/** Models sent to a worker at a time; it asks for more when done. */
const CHUNK = 8;

/** Options of {@linkcode scanInWorkers}. */
export interface ScanPoolOptions {
  dataDir: string;
  exclude: string[];
  /** Links that leave a model (default `store`). */
  symlinks?: SymlinkMode;
  /** Worker threads (default: the number of cores, at most 4). */
  workers?: number;
  /** Files each worker hashes in parallel (default 8). */
  hashConcurrency?: number;
  signal?: AbortSignal;
}

/** Worker threads worth starting on this machine for `models` models (0: scan in-process). */
export function scanWorkerCount(models: number): number {
  const cores = navigator.hardwareConcurrency ?? 1;
  // A worker costs tens of milliseconds to start; a few models are faster in-process.
  if (cores < 2 || models < 4 * CHUNK) return 0;
  return Math.min(cores, 4);
}

/**
 * Reads the base of and scans every model in `models` on worker threads.
 * Returns the results by `type/id`; a model missing from the map must be
 * scanned in-process. Rejects only when `signal` aborts.
 */
export async function scanInWorkers(
  repoDir: string,
  models: readonly ModelRef[],
  opts: ScanPoolOptions,
): Promise<Map<string, Prescan>> {
  const out = new Map<string, Prescan>();
  const n = Math.max(1, Math.min(opts.workers ?? scanWorkerCount(models.length), models.length));
  if (models.length === 0) return out;
  opts.signal?.throwIfAborted();
  const setup: WorkerSetup = {
    kind: "setup",
    repoDir,
    dataDir: opts.dataDir,
    exclude: [...opts.exclude],
    symlinks: opts.symlinks ?? "store",
    hashConcurrency: opts.hashConcurrency ?? 8,
  };
  const url = new URL("./_scan_worker.ts", import.meta.url);
  let next = 0;
  const workers: Worker[] = [];
  const stop = () => workers.forEach((w) => w.terminate());
  try {
    await new Promise<void>((resolve, reject) => {
      let running = 0;
      const onAbort = () => reject(opts.signal!.reason);
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      const done = () => {
        if (--running === 0) {
          opts.signal?.removeEventListener("abort", onAbort);
          resolve();
        }
      };
      const feed = (w: Worker) => {
        if (next >= models.length) {
          w.terminate();
          done();
          return;
        }
        const job: WorkerJob = { kind: "job", models: models.slice(next, next + CHUNK) };
        next += CHUNK;
        w.postMessage(job);
      };
      for (let i = 0; i < n; i++) {
        const w = new Worker(url, { type: "module" });
        workers.push(w);
        running++;
        w.onmessage = (e: MessageEvent<Prescan[]>) => {
          for (const r of e.data) out.set(formatRef(r.model), r);
          feed(w);
        };
        // A worker that fails (it could not load, say) just stops taking
        // work; the models it did not report are scanned in-process.
        w.onerror = (e) => {
          e.preventDefault();
          w.terminate();
          done();
        };
        w.postMessage(setup);
        feed(w);
      }
    });
  } finally {
    stop();
  }
  return out;
}
