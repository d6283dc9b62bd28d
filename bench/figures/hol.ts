/**
 * Figure 1, head-of-line blocking on a filesystem datastore: a one-file
 * `flush` while a big `flush` of another model (another repository, same
 * datastore) holds its lock, against the same one-file flush alone; on the
 * scoped and on the global path. Context, without a target: on 2 cores it
 * measures CPU contention more than locking; the target is on the S3 + 100 ms
 * figure (10).
 *
 * @module
 */
import { join } from "node:path";
import { lockRecordKey } from "../../src/lock/records.ts";
import { createProvider } from "../../src/providers/mod.ts";
import { type BenchContext, interleave } from "../_context.ts";
import { cli, expectSummary, spawnCli, waitFor } from "../_run.ts";
import { stampFiles, writeBigFiles, writeText } from "../_tree.ts";
import { median, type Row, row } from "../report.ts";

/** The label of the filesystem figures kept as context (figures 1 and 2). */
export const CONTEXT = "filesystem (context): ";
const PATHS = { scoped: [] as string[], global: ["--disable-cap", "scopedSync"] };

/** Runs figure 1 and returns its rows (context: no target). */
export async function holFigure(ctx: BenchContext): Promise<Row[]> {
  const { bigBytes, bigShards } = ctx.sizes;
  const dir = await ctx.fresh("hol");
  const ds = join(dir, "datastore");
  const big = join(dir, "big");
  const small = join(dir, "small");
  for (const r of [big, small]) {
    await Deno.mkdir(r);
    await cli(["init", "--datastore", `filesystem:${ds}`], { cwd: r });
  }
  const shards = await writeBigFiles(join(big, "models/hol/big"), {
    count: bigShards,
    size: Math.floor(bigBytes / bigShards),
    seed: 7,
  });
  await cli(["flush", "--json"], { cwd: big });
  const smallFile = join(small, "models/hol/small/one.txt");
  // The lock records are read through the provider (the datastore's format, not its files).
  const store = await createProvider({ type: "filesystem", path: ds }, {
    callTimeoutMs: 30_000,
    host: Deno.hostname(),
    pid: Deno.pid,
    baseDir: dir,
  });
  const holderPid = async (key: string): Promise<number | undefined> => {
    const rec = await store.getRecord(key);
    if (rec === null) return undefined;
    try {
      return JSON.parse(new TextDecoder().decode(rec.bytes)).pid;
    } catch {
      return undefined; // being written
    }
  };
  let seq = 0;
  const bigTimes: Record<string, number[]> = { scoped: [], global: [] };
  const overlaps: Record<string, number> = { scoped: 0, global: 0 };

  const alone = (path: keyof typeof PATHS) => async () => {
    await writeText(smallFile, `change ${++seq}\n`);
    const r = await cli(["flush", "--json", ...PATHS[path]], { cwd: small });
    expectSummary(r, { pushed: 1, failed: 0 });
    return r.ms / 1000;
  };
  const during = (path: keyof typeof PATHS) => async (round: number) => {
    await writeText(smallFile, `change ${++seq}\n`);
    await stampFiles(shards, `run ${++seq}`);
    const lockKey = lockRecordKey(
      path === "scoped" ? { kind: "model", model: { type: "hol", id: "big" } } : { kind: "global" },
    );
    const bigProc = spawnCli(["flush", "--json", ...PATHS[path]], { cwd: big });
    try {
      await waitFor(`the big flush to hold ${lockKey}`, async () => {
        if (bigProc.exited) await bigProc.done; // throws with its output if it failed
        if (bigProc.exited) throw new Error("the big flush ended before the small one started");
        return await holderPid(lockKey) === bigProc.pid;
      });
      const r = await cli(["flush", "--json", "--lock-timeout", "10m", ...PATHS[path]], {
        cwd: small,
      });
      const stillRunning = !bigProc.exited;
      expectSummary(r, { pushed: 1, failed: 0 });
      const b = await bigProc.done;
      expectSummary(b, { pushed: 1, failed: 0 });
      if (round > 0) {
        bigTimes[path].push(b.ms / 1000);
        if (stillRunning) overlaps[path]++;
      }
      return r.ms / 1000;
    } finally {
      bigProc.kill(); // only if a failure left it running
    }
  };

  // Quick: the set-up flush is the only warm-up.
  const s = await interleave(ctx, "figure 1", {
    "alone (scoped)": alone("scoped"),
    "during big flush (scoped)": during("scoped"),
    "alone (global)": alone("global"),
    "during big flush (global)": during("global"),
  }, { warmup: !ctx.quick }).finally(() => store.close());
  const mb = (bigBytes / 1e6).toFixed(0);
  const note = (path: "scoped" | "global") =>
    `big flush ${median(bigTimes[path])?.toFixed(2)} s median; ` +
    `still running when the small one ended in ${overlaps[path]}/${ctx.runs} runs`;
  return [
    row({
      figure: "1",
      name: `${CONTEXT}1-file flush during a ${mb} MB flush, scoped`,
      unit: "s",
      samples: s["during big flush (scoped)"],
      peer: "same flush alone",
      peerSamples: s["alone (scoped)"],
      note: note("scoped"),
    }),
    row({
      figure: "1",
      name: `${CONTEXT}1-file flush during a ${mb} MB flush, global`,
      unit: "s",
      samples: s["during big flush (global)"],
      peer: "same flush alone",
      peerSamples: s["alone (global)"],
      note: note("global"),
    }),
  ];
}
