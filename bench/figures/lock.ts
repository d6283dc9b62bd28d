/**
 * Figure 6, lock latency: uncontended acquire + release of one model lock on
 * a filesystem datastore, in this process through the provider registry (the
 * same wrapped provider the CLI uses), so no process start-up is counted.
 * There is no comparable peer; the median is judged against the target.
 *
 * Also the start-up of the CLI itself (`deno run -A main.ts --version`), the
 * floor under every command-level figure.
 *
 * @module
 */
import { join } from "node:path";
import { Datastore } from "../../src/provider/datastore.ts";
import { createProvider } from "../../src/providers/mod.ts";
import { type BenchContext, interleave } from "../_context.ts";
import { cli, run } from "../_run.ts";
import { type Row, row } from "../report.ts";

/** Runs the lock latency figure; returns its row. */
export async function lockFigure(ctx: BenchContext): Promise<Row[]> {
  const dir = await ctx.fresh("lock");
  const provider = await createProvider({ type: "filesystem", path: join(dir, "datastore") }, {
    callTimeoutMs: 30_000,
    host: Deno.hostname(),
    pid: Deno.pid,
    baseDir: dir,
  });
  const ds = new Datastore(provider, { host: Deno.hostname(), pid: Deno.pid, skewMarginMs: 5_000 });
  await ds.init();
  await ds.open();
  const handle = ds.lock({ kind: "model", model: { type: "bench", id: "lock" } });
  const req = {
    holder: "bench",
    host: Deno.hostname(),
    pid: Deno.pid,
    operation: "bench",
    ttlMs: 30_000,
  };
  const samples: number[] = [];
  const n = ctx.sizes.lockIterations;
  for (let i = 0; i < n + 20; i++) {
    const start = performance.now();
    const res = await handle.tryAcquire(req);
    if (!res.acquired) throw new Error(`an uncontended lock was refused on iteration ${i}`);
    await handle.release(res.record.nonce);
    const ms = performance.now() - start;
    if (i >= 20) samples.push(ms);
  }
  await provider.close();
  ctx.log(`figure 6: lock acquire + release, ${n} iterations`);
  return [
    row({
      figure: "6",
      name: "lock acquire + release, filesystem",
      unit: "ms",
      samples,
      target: { max: 5, of: "value" },
      note: `in-process, ${n} iterations after 20 warm-up; no comparable peer`,
    }),
  ];
}

/** Start-up of the CLI (`deno run -A main.ts --version`) against `git --version`. */
export async function startupFigure(ctx: BenchContext): Promise<Row[]> {
  const dir = await ctx.fresh("startup");
  const steps: Record<string, () => Promise<number>> = {
    modelsync: async () => (await cli(["--version"], { cwd: dir })).ms / 1000,
  };
  if (ctx.peers.git) {
    steps.git = async () => (await run(["git", "--version"], { cwd: dir })).ms / 1000;
  }
  const s = await interleave(ctx, "start-up", steps);
  return [
    row({
      figure: "0",
      name: "start-up: deno run -A main.ts --version",
      unit: "s",
      samples: s.modelsync,
      peer: ctx.peers.git ? "git --version" : undefined,
      peerSamples: s.git,
      note: "the floor under every command-level figure",
    }),
  ];
}
