/**
 * Figure 8, one large file (2 GiB; quick: 256 MiB) on a filesystem
 * datastore: a first `push` of the model holding it into an empty datastore,
 * and a first `pull` of it into an empty repository, each against `cp` of
 * the same file to a fresh path. Every copy is removed once the next one
 * exists, and `sync` (not timed) runs before every timed step, so no step
 * pays for the writeback of the one before.
 *
 * @module
 */
import { join } from "node:path";
import { type BenchContext, interleave } from "../_context.ts";
import { cli, expectSummary, run } from "../_run.ts";
import { writeLargeFile } from "../_tree.ts";
import { median, peerRow, type Row } from "../report.ts";

/** Runs figure 8; returns its rows (push and pull, each against cp). */
export async function largeFigure(ctx: BenchContext): Promise<Row[]> {
  const size = ctx.sizes.largeBytes;
  const dir = await ctx.fresh("large");
  const repo = join(dir, "repo");
  const file = join(repo, "models/large/one/weights.bin");
  ctx.log(`figure 8: writing one file of ${size / 2 ** 20} MiB`);
  await writeLargeFile(file, size, 8);
  const label = size >= 2 ** 30 ? `${size / 2 ** 30} GiB` : `${size / 2 ** 20} MiB`;
  const flush = () => run(["sync"], { cwd: dir });
  const mem: Record<string, number[]> = { push: [], pull: [] };
  let seq = 0;
  let datastore = "";
  let lastCp = "";
  let lastPull = "";
  const remove = (p: string) => p === "" ? Promise.resolve() : Deno.remove(p, { recursive: true });

  const push = async (round: number) => {
    const n = ++seq;
    const previous = datastore;
    datastore = join(dir, `datastore-${n}`);
    await Deno.remove(join(repo, ".modelsync"), { recursive: true }).catch(() => {});
    // init refuses to switch datastores, so point modelsync.yaml at a new one first.
    await Deno.writeTextFile(join(repo, "modelsync.yaml"), `datastore: filesystem:${datastore}\n`);
    await cli(["init"], { cwd: repo });
    await flush();
    const r = await cli(["push", "--json"], { cwd: repo, memory: true });
    expectSummary(r, { pushed: 1, failed: 0 });
    if (round > 0 && r.maxRssKiB) mem.push.push(r.maxRssKiB / 1024);
    await remove(previous);
    return r.ms / 1000;
  };
  const cp = async () => {
    const dst = join(dir, `cp-${++seq}.bin`);
    await flush();
    const r = await run(["cp", file, dst], { cwd: dir });
    await remove(lastCp);
    lastCp = dst;
    return r.ms / 1000;
  };
  const pull = async (round: number) => {
    const dst = join(dir, `pull-${++seq}`);
    await Deno.mkdir(dst);
    await cli(["init", "--datastore", `filesystem:${datastore}`], { cwd: dst });
    await flush();
    const r = await cli(["pull", "--json"], { cwd: dst, memory: true });
    expectSummary(r, { pulled: 1, failed: 0 });
    if (round > 0 && r.maxRssKiB) mem.pull.push(r.maxRssKiB / 1024);
    await remove(lastPull);
    lastPull = dst;
    return r.ms / 1000;
  };
  const steps: Record<string, (round: number) => Promise<number>> = { push };
  if (ctx.peers.cp) steps.cp = cp;
  steps.pull = pull;
  // Quick: no warm-up (the file was just written, so it is in the page cache), 2 runs.
  const s = await interleave(ctx, "figure 8", steps, {
    warmup: !ctx.quick,
    runs: ctx.quick ? Math.min(ctx.runs, 2) : ctx.runs,
  });
  const peak = (what: string) => {
    const m = median(mem[what]);
    return m === null ? "" : `; peak memory ${m.toFixed(0)} MiB`;
  };
  return (["push", "pull"] as const).map((what) =>
    peerRow({
      figure: "8",
      name: `one ${label} file, first ${what}`,
      unit: "s",
      samples: s[what],
      peer: "cp",
      peerSamples: s.cp,
      target: { max: 2.0, of: "ratio" },
      note: `${what === "push" ? "into an empty datastore" : "into an empty repository"}` +
        peak(what),
    }, ctx.missing("cp"))
  );
}
