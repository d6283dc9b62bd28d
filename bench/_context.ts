/**
 * What every figure gets: the mode and sizes, the number of runs, fresh
 * temporary directories, the peers found on this machine, and a progress log
 * on stderr.
 *
 * @example
 * ```ts
 * import { BenchContext, sizesFor } from "./_context.ts";
 * const ctx = await BenchContext.create({ quick: true, runs: 3, keep: false, sizes: sizesFor(true) });
 * const dir = await ctx.fresh("noop");
 * await ctx.cleanup();
 * ```
 * @module
 */
import { join } from "node:path";

/** Sizes of the synthetic data, full or quick. */
export interface Sizes {
  /** Figures 3, 4, 6: models × files of `fileSize` bytes. */
  treeModels: number;
  treeFiles: number;
  fileSize: number;
  /** Figures 1 and 10: the big model's bytes, in `bigShards` files. */
  bigBytes: number;
  bigShards: number;
  /** Figures 2 and 10: writers, files per writer (figure 2), bytes per file. */
  writers: number;
  writerFiles: number;
  writerFileSize: number;
  /** Figures 5 and 9: models × files of `fileSize` bytes on S3. */
  s3Models: number;
  s3Files: number;
  /** Figure 6: lock acquire + release iterations. */
  lockIterations: number;
  /** Figure 8: bytes of the one large file. */
  largeBytes: number;
  /** Figure 9 uses s3Models × s3Files; figure 10: files per writer (writers × 16 KiB files). */
  s3WriterFiles: number;
}

/** The sizes of the issue (full) or the quick run. */
export function sizesFor(quick: boolean): Sizes {
  return quick
    ? {
      treeModels: 100,
      treeFiles: 100,
      fileSize: 1024,
      // 10 MB is flushed before the small flush has even started: no overlap to measure.
      bigBytes: 100_000_000,
      bigShards: 25,
      writers: 8,
      writerFiles: 200,
      writerFileSize: 16_384,
      s3Models: 10,
      s3Files: 20,
      lockIterations: 200,
      largeBytes: 256 * 2 ** 20,
      s3WriterFiles: 20,
    }
    : {
      treeModels: 1000,
      treeFiles: 100,
      fileSize: 1024,
      bigBytes: 100_000_000,
      bigShards: 25,
      writers: 8,
      writerFiles: 200,
      writerFileSize: 16_384,
      s3Models: 100,
      s3Files: 100,
      lockIterations: 200,
      largeBytes: 2 * 2 ** 30,
      s3WriterFiles: 200,
    };
}

/** Options of one benchmark run. */
export interface BenchOptions {
  quick: boolean;
  runs: number;
  keep: boolean;
  sizes: Sizes;
}

/** Shared state of one benchmark run. */
export class BenchContext {
  #seq = 0;
  /** Peer tools by name ("git", "rclone", "cp") with their version, null when missing. */
  peers: Record<string, string | null> = {};
  private constructor(readonly opts: BenchOptions, readonly root: string) {}

  /** A run under a new directory in the system temp directory. */
  static async create(opts: BenchOptions): Promise<BenchContext> {
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "modelsync-bench-" }));
    return new BenchContext(opts, root);
  }

  get quick(): boolean {
    return this.opts.quick;
  }

  get runs(): number {
    return this.opts.runs;
  }

  get sizes(): Sizes {
    return this.opts.sizes;
  }

  /** A new, never-used directory (fresh, so ext4 has not just freed a tree there). */
  async fresh(name: string): Promise<string> {
    const dir = join(this.root, `${String(++this.#seq).padStart(3, "0")}-${name}`);
    await Deno.mkdir(dir, { recursive: true });
    return dir;
  }

  /** The reason a peer cannot run, or null when it is installed. */
  missing(peer: string): string | null {
    return this.peers[peer] ? null : `${peer} not installed`;
  }

  /** A progress line on stderr. */
  log(msg: string): void {
    console.error(`bench: ${msg}`);
  }

  /**
   * Removes every temporary directory unless --keep. With `background`, a
   * detached `rm -rf` does it after this process has printed its results
   * (removing 100,000s of files takes a while and slows the disk meanwhile).
   */
  async cleanup(opts: { background?: boolean } = {}): Promise<void> {
    if (this.opts.keep) {
      this.log(`kept ${this.root}`);
      return;
    }
    if (opts.background) {
      try {
        const child = new Deno.Command("rm", {
          args: ["-rf", this.root],
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).spawn();
        child.unref();
        this.log(`removing ${this.root} in the background (pid ${child.pid})`);
        return;
      } catch {
        // No rm: remove it here.
      }
    }
    await Deno.remove(this.root, { recursive: true }).catch(() => {});
  }
}

/**
 * One warm-up of each step (round 0, discarded), then `runs` rounds of every
 * step in turn (A, B, A, B, ...). Returns the samples of each step, in
 * seconds. `opts` overrides the number of runs and can drop the warm-up (for
 * steps too slow to repeat, such as a first push to the S3 test server);
 * `skip` leaves a step out of some rounds (a slow context step in a quick run).
 */
export async function interleave(
  ctx: BenchContext,
  label: string,
  steps: Record<string, (round: number) => Promise<number>>,
  opts: { runs?: number; warmup?: boolean; skip?: (step: string, round: number) => boolean } = {},
): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const name of Object.keys(steps)) out[name] = [];
  const runs = opts.runs ?? ctx.runs;
  for (let round = opts.warmup === false ? 1 : 0; round <= runs; round++) {
    for (const [name, step] of Object.entries(steps)) {
      if (opts.skip?.(name, round)) continue;
      const s = await step(round);
      if (round > 0) out[name].push(s);
      ctx.log(`${label} ${round === 0 ? "warm-up" : `run ${round}`}: ${name} ${s.toFixed(3)} s`);
    }
  }
  return out;
}
