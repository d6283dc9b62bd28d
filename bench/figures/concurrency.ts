/**
 * Figure 2, concurrency on a filesystem datastore: 8 `flush` processes at
 * once, each in its own repository on its own model (200 files × 16 KiB),
 * one datastore; wall time from the first spawn to the last exit, scoped
 * path against global path. Context, without a target: on 2 cores it
 * measures CPU contention more than locking; the target is on the S3 +
 * 100 ms figure (10).
 *
 * @module
 */
import { join } from "node:path";
import { type BenchContext, interleave } from "../_context.ts";
import { cli, expectSummary, spawnCli } from "../_run.ts";
import { listFiles, writeModels } from "../_tree.ts";
import { type Row, row } from "../report.ts";
import { CONTEXT } from "./hol.ts";

/** Runs figure 2 and returns its row. */
export async function concurrencyFigure(ctx: BenchContext): Promise<Row[]> {
  const { writers, writerFiles, writerFileSize } = ctx.sizes;
  const dir = await ctx.fresh("concurrency");
  const ds = join(dir, "datastore");
  // Set up the writers in parallel: each its own repository with one model, flushed once.
  const repos = await Promise.all(
    Array.from({ length: writers }, async (_, k) => {
      const r = join(dir, `writer-${k}`);
      await Deno.mkdir(r);
      await cli(["init", "--datastore", `filesystem:${ds}`], { cwd: r });
      await writeModels(join(r, "models"), {
        models: 1,
        files: writerFiles,
        size: writerFileSize,
        type: `writer${k}`,
        seed: k + 1,
      });
      await cli(["flush", "--json", "--lock-timeout", "10m"], { cwd: r });
      return { dir: r, files: await listFiles(join(r, "models")) };
    }),
  );
  let seq = 0;
  const step = (flags: string[]) => async () => {
    const tag = `run ${++seq}`;
    const bytes = new TextEncoder().encode(tag.padEnd(16, "."));
    for (const r of repos) {
      for (const f of r.files) {
        const h = await Deno.open(f, { write: true });
        await h.write(bytes);
        h.close();
      }
    }
    const start = performance.now();
    const procs = repos.map((r) =>
      spawnCli(["flush", "--json", "--lock-timeout", "10m", ...flags], { cwd: r.dir })
    );
    const settled = await Promise.allSettled(procs.map((p) => p.done));
    const wall = performance.now() - start;
    for (const p of procs) p.kill();
    for (const s of settled) {
      if (s.status === "rejected") throw s.reason;
      expectSummary(s.value, { pushed: 1, failed: 0 });
    }
    return wall / 1000;
  };
  // Quick: the set-up flush is the only warm-up.
  const s = await interleave(ctx, "figure 2", {
    scoped: step([]),
    global: step(["--disable-cap", "scopedSync"]),
  }, { warmup: !ctx.quick });
  return [
    row({
      figure: "2",
      name: `${CONTEXT}${writers} concurrent flushes (${writerFiles} × ${
        writerFileSize / 1024
      } KiB each)`,
      unit: "s",
      samples: s.scoped,
      peer: "global path",
      peerSamples: s.global,
    }),
  ];
}
