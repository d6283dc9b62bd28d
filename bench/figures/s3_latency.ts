/**
 * Figures 9 and 10, S3 with a realistic latency: the local test server
 * behind the proxy `tests/_s3_proxy.ts`, which delays every request
 * (modelsync's and rclone's alike) by a set time before forwarding it and
 * counts them all.
 *
 * Figure 9, 30 ms per request (throughput), 10,000 files of 1 KiB in 100
 * models (quick: 200 in 10):
 * - first push to an empty prefix against `rclone copy --transfers 16` of
 *   the tree to a fresh prefix: time, requests, requests per model pushed;
 * - first pull of every model into an empty repository against
 *   `rclone copy --transfers 16` of rclone's copy back to a fresh directory;
 * - no-op push and no-op pull: requests (and time, in the note).
 *
 * Figure 10, 100 ms per request (the small-object latency AWS documents),
 * the concurrency figures:
 * - 8 `flush` processes at once, each in its own repository on its own
 *   model (200 × 16 KiB each; quick: 20), on the scoped path, against one of
 *   them alone; the same 8 on the global path for context (quick: one run);
 * - a one-file `flush` started once a 100 MB `flush` of another model has
 *   begun uploading (its first blob PUT reached the proxy), against the same
 *   flush alone, scoped; the note says for what share of the small flush
 *   the big one was still running.
 *
 * The test server (moto) is slower than S3 for many small PUTs: ratios
 * against a peer in the same run are what the figures judge. Skipped, with
 * the reason, when the server or the S3 provider is unavailable.
 *
 * @module
 */
import { join } from "node:path";
import { type BenchContext, interleave } from "../_context.ts";
import { BenchError, cli, expectSummary, run, spawnCli, waitFor } from "../_run.ts";
import { listFiles, stampFiles, writeBigFiles, writeModels, writeText } from "../_tree.ts";
import { median, peerRow, type Row, row, skipped } from "../report.ts";
import { type S3Bench, s3Unavailable, withS3 } from "../_s3.ts";

/** Latency of the throughput figure (9) and of the concurrency figures (10), per request. */
export const THROUGHPUT_LATENCY_MS = 30;
export const CONCURRENCY_LATENCY_MS = 100;

const RCLONE = ["rclone", "copy", "--transfers", "16"];

/** Runs figure 9; returns its rows (SKIP rows with the reason when it cannot run). */
export async function s3ThroughputFigure(ctx: BenchContext): Promise<Row[]> {
  const why = await s3Unavailable();
  const at = `S3 + ${THROUGHPUT_LATENCY_MS} ms`;
  if (why !== null) {
    return [
      skipped("9", `${at}: first push`, why, { peer: "rclone copy --transfers 16" }),
      skipped("9", `${at}: first pull`, why, { peer: "rclone copy back" }),
      skipped("9", `${at}: no-op push / pull, requests`, why, { unit: "requests" }),
    ];
  }
  return await withS3(
    ctx,
    { latencyMs: THROUGHPUT_LATENCY_MS, name: "figure 9" },
    (s3) => throughput(ctx, s3, at),
  );
}

async function throughput(ctx: BenchContext, s3: S3Bench, at: string): Promise<Row[]> {
  const { s3Models, s3Files, fileSize } = ctx.sizes;
  const files = `${(s3Models * s3Files).toLocaleString("en-US")} files in ${s3Models} models`;
  const { proxy, bucket, dir, env, rcloneEnv } = s3;
  const repo = join(dir, "repo");
  const trash = join(dir, "trash");
  await Deno.mkdir(trash, { recursive: true });
  await writeModels(join(repo, "models"), { models: s3Models, files: s3Files, size: fileSize });
  const requests: Record<string, number[]> = {};
  const counted = async (what: string, round: number, fn: () => Promise<number>) => {
    proxy.reset();
    const s = await fn();
    if (round > 0) (requests[what] ??= []).push(proxy.count);
    return s;
  };
  const hasRclone = ctx.peers.rclone !== null && ctx.peers.rclone !== undefined;
  // Every first push and pull sends the whole tree through moto: no warm-up, at most 2 runs.
  const slowRuns = { runs: Math.min(ctx.runs, 2), warmup: false };

  let seq = 0;
  let pushedPrefix = "";
  let rcloneCopy = "";
  const firstPush = (round: number) => {
    const n = ++seq;
    return counted("first push", round, async () => {
      await Deno.rename(join(repo, ".modelsync"), join(trash, `modelsync-${n}`)).catch(() => {});
      pushedPrefix = `modelsync-${n}`;
      await Deno.writeTextFile(
        join(repo, "modelsync.yaml"),
        `datastore: ${s3.spec(pushedPrefix)}\n`,
      );
      await cli(["init"], { cwd: repo, env });
      proxy.reset();
      const r = await cli(["push", "--json"], { cwd: repo, env });
      expectSummary(r, { pushed: s3Models, failed: 0 });
      return r.ms / 1000;
    });
  };
  const copy = (round: number) =>
    counted("rclone copy", round, async () => {
      rcloneCopy = `bench:${bucket}/rclone-${++seq}`;
      const r = await run([...RCLONE, join(repo, "models"), rcloneCopy], {
        cwd: dir,
        env: rcloneEnv,
      });
      return r.ms / 1000;
    });
  const push = await interleave(
    ctx,
    "figure 9 first push",
    hasRclone ? { modelsync: firstPush, "rclone copy": copy } : { modelsync: firstPush },
    slowRuns,
  );

  const firstPull = (round: number) =>
    counted("first pull", round, async () => {
      const dst = join(dir, `pull-${++seq}`);
      await Deno.mkdir(dst);
      await cli(["init", "--datastore", s3.spec(pushedPrefix)], { cwd: dst, env });
      proxy.reset();
      const r = await cli(["pull", "--json"], { cwd: dst, env });
      expectSummary(r, { pulled: s3Models, failed: 0 });
      return r.ms / 1000;
    });
  const copyBack = (round: number) =>
    counted("rclone copy back", round, async () => {
      const r = await run([...RCLONE, rcloneCopy, join(dir, `back-${++seq}`)], {
        cwd: dir,
        env: rcloneEnv,
      });
      return r.ms / 1000;
    });
  const pull = await interleave(
    ctx,
    "figure 9 first pull",
    hasRclone ? { modelsync: firstPull, "rclone copy back": copyBack } : { modelsync: firstPull },
    slowRuns,
  );

  // The repository is attached to the last first push's prefix: both are no-ops there.
  const noop = await interleave(ctx, "figure 9 no-op", {
    "no-op push": (round) =>
      counted("no-op push", round, async () => {
        const r = await cli(["push", "--json"], { cwd: repo, env });
        expectSummary(r, { pushed: 0, failed: 0, conflict: 0 });
        return r.ms / 1000;
      }),
    "no-op pull": (round) =>
      counted("no-op pull", round, async () => {
        const r = await cli(["pull", "--json"], { cwd: repo, env });
        expectSummary(r, { pulled: 0, failed: 0, conflict: 0 });
        return r.ms / 1000;
      }),
  }, { runs: Math.min(ctx.runs, ctx.quick ? 2 : 3) });

  const missing = hasRclone ? null : "rclone not installed";
  const reqs = (what: string) => (requests[what] ?? []).join(", ");
  const perModel = (what: string) => requests[what]?.map((n) => n / s3Models);
  const secs = (xs: number[]) => `${median(xs)?.toFixed(2)} s`;
  return [
    peerRow({
      figure: "9",
      name: `${at}: first push, ${files}`,
      unit: "s",
      samples: push.modelsync,
      peer: "rclone copy --transfers 16",
      peerSamples: push["rclone copy"],
      target: { max: 0.1, of: "ratio" },
      note: `requests: modelsync ${reqs("first push")}; rclone ${reqs("rclone copy")}; ` +
        `no warm-up`,
    }, missing),
    row({
      figure: "9",
      name: `${at}: first push, requests`,
      unit: "requests",
      samples: requests["first push"],
      peer: hasRclone ? "rclone copy --transfers 16" : undefined,
      peerSamples: requests["rclone copy"],
    }),
    peerRow({
      figure: "9",
      name: `${at}: first push, requests per model pushed`,
      unit: "req/model",
      samples: perModel("first push")!,
      peer: "rclone copy --transfers 16",
      peerSamples: perModel("rclone copy"),
      target: { max: 10, of: "value" },
    }, null),
    peerRow({
      figure: "9",
      name: `${at}: first pull into an empty repository, ${files}`,
      unit: "s",
      samples: pull.modelsync,
      peer: "rclone copy back --transfers 16",
      peerSamples: pull["rclone copy back"],
      target: { max: 0.2, of: "ratio" },
      note: `requests: modelsync ${reqs("first pull")}; rclone ${reqs("rclone copy back")}; ` +
        `no warm-up`,
    }, missing),
    row({
      figure: "9",
      name: `${at}: first pull, requests`,
      unit: "requests",
      samples: requests["first pull"],
      peer: hasRclone ? "rclone copy back --transfers 16" : undefined,
      peerSamples: requests["rclone copy back"],
    }),
    row({
      figure: "9",
      name: `${at}: no-op push, requests`,
      unit: "requests",
      samples: requests["no-op push"],
      target: { max: 3, of: "value" },
      note: `${secs(noop["no-op push"])} median`,
    }),
    row({
      figure: "9",
      name: `${at}: no-op pull, requests`,
      unit: "requests",
      samples: requests["no-op pull"],
      target: { max: 3, of: "value" },
      note: `${secs(noop["no-op pull"])} median`,
    }),
  ];
}

/** Runs figure 10; returns its rows (SKIP rows with the reason when it cannot run). */
export async function s3ConcurrencyFigure(ctx: BenchContext): Promise<Row[]> {
  const why = await s3Unavailable();
  const at = `S3 + ${CONCURRENCY_LATENCY_MS} ms`;
  if (why !== null) {
    return [
      skipped("10", `${at}: ${ctx.sizes.writers} concurrent flushes`, why, {
        peer: "one of them alone",
      }),
      skipped("10", `${at}: 1-file flush during a big flush`, why, { peer: "same flush alone" }),
    ];
  }
  return await withS3(
    ctx,
    { latencyMs: CONCURRENCY_LATENCY_MS, name: "figure 10" },
    async (s3) => [...await concurrent(ctx, s3, at), ...await headOfLine(ctx, s3, at)],
  );
}

/** 8 flushes of different models at once, scoped and global, against one of them alone. */
async function concurrent(ctx: BenchContext, s3: S3Bench, at: string): Promise<Row[]> {
  const { writers, s3WriterFiles, writerFileSize } = ctx.sizes;
  const { proxy, env } = s3;
  const spec = s3.spec("concurrency");
  const repos = await Promise.all(
    Array.from({ length: writers }, async (_, k) => {
      const r = join(s3.dir, `writer-${k}`);
      await Deno.mkdir(r);
      await cli(["init", "--datastore", spec], { cwd: r, env });
      await writeModels(join(r, "models"), {
        models: 1,
        files: s3WriterFiles,
        size: writerFileSize,
        type: `writer${k}`,
        seed: k + 1,
      });
      return { dir: r, files: await listFiles(join(r, "models")) };
    }),
  );
  // The set-up flush, all at once on the scoped path (not timed).
  await Promise.all(
    repos.map((r) => cli(["flush", "--json", "--lock-timeout", "10m"], { cwd: r.dir, env })),
  );
  let seq = 0;
  const aloneRequests: number[] = [];
  const flushAll = async (flags: string[], which: typeof repos) => {
    const tag = `run ${++seq}`;
    for (const r of which) await stampFiles(r.files, tag);
    proxy.reset();
    const start = performance.now();
    const procs = which.map((r) =>
      spawnCli(["flush", "--json", "--lock-timeout", "10m", ...flags], { cwd: r.dir, env })
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
  const s = await interleave(ctx, "figure 10 concurrency", {
    "one alone": async (round) => {
      const t = await flushAll([], repos.slice(0, 1));
      if (round > 0) aloneRequests.push(proxy.count);
      return t;
    },
    scoped: () => flushAll([], repos),
    global: () => flushAll(["--disable-cap", "scopedSync"], repos),
  }, {
    warmup: !ctx.quick,
    runs: ctx.quick ? Math.min(ctx.runs, 2) : ctx.runs,
    // Quick: the global path (context, 8 flushes one after another) runs once.
    skip: (step, round) => ctx.quick && step === "global" && round > 1,
  });
  const name = `${at}: ${writers} concurrent flushes of different models ` +
    `(${s3WriterFiles} × ${writerFileSize / 1024} KiB each)`;
  const scopedOverGlobal = (median(s.scoped) ?? NaN) / (median(s.global) ?? NaN);
  return [
    row({
      figure: "10",
      name: `${name}, scoped`,
      unit: "s",
      samples: s.scoped,
      peer: "one of them alone",
      peerSamples: s["one alone"],
      target: { max: 2.0, of: "ratio" },
      note: `one flush alone: ${median(aloneRequests)} requests`,
    }),
    row({
      figure: "10",
      name: `${name}, global (context)`,
      unit: "s",
      samples: s.global,
      peer: "one of them alone",
      peerSamples: s["one alone"],
      note: `scoped is ${scopedOverGlobal.toFixed(2)}× global`,
    }),
  ];
}

/** A one-file flush while a 100 MB flush of another model uploads, against it alone (scoped). */
async function headOfLine(ctx: BenchContext, s3: S3Bench, at: string): Promise<Row[]> {
  const { bigBytes, bigShards } = ctx.sizes;
  const { proxy, env } = s3;
  const spec = s3.spec("hol");
  const big = join(s3.dir, "big");
  const small = join(s3.dir, "small");
  for (const r of [big, small]) {
    await Deno.mkdir(r);
    await cli(["init", "--datastore", spec], { cwd: r, env });
  }
  const shards = await writeBigFiles(join(big, "models/hol/big"), {
    count: bigShards,
    size: Math.floor(bigBytes / bigShards),
    seed: 10,
  });
  await cli(["flush", "--json"], { cwd: big, env });
  const smallFile = join(small, "models/hol/small/one.txt");
  let seq = 0;
  const bigTimes: number[] = [];
  /** Share of each small flush's time during which the big flush was still running. */
  const overlap: number[] = [];
  let overlaps = 0;
  const alone = async () => {
    await writeText(smallFile, `change ${++seq}\n`);
    const r = await cli(["flush", "--json"], { cwd: small, env });
    expectSummary(r, { pushed: 1, failed: 0 });
    return r.ms / 1000;
  };
  const during = async (round: number) => {
    await writeText(smallFile, `change ${++seq}\n`);
    await stampFiles(shards, `run ${++seq}`);
    let uploading = false;
    proxy.onRequest = (req) => {
      if (req.method === "PUT" && req.path.includes("/blobs/")) uploading = true;
    };
    const bigStart = performance.now();
    const bigProc = spawnCli(["flush", "--json"], { cwd: big, env });
    try {
      await waitFor("the big flush to start uploading", async () => {
        if (bigProc.exited) await bigProc.done; // throws with its output if it failed
        if (bigProc.exited) {
          throw new BenchError("the big flush ended before its first blob upload was seen");
        }
        return uploading;
      }, 120_000);
      proxy.onRequest = undefined;
      const smallStart = performance.now();
      const r = await cli(["flush", "--json", "--lock-timeout", "10m"], { cwd: small, env });
      const stillRunning = !bigProc.exited;
      expectSummary(r, { pushed: 1, failed: 0 });
      const b = await bigProc.done;
      expectSummary(b, { pushed: 1, failed: 0 });
      if (round > 0) {
        bigTimes.push(b.ms / 1000);
        if (stillRunning) overlaps++;
        const smallEnd = smallStart + r.ms;
        const beside = Math.min(smallEnd, bigStart + b.ms) - smallStart;
        overlap.push(Math.max(0, beside) / r.ms);
      }
      return r.ms / 1000;
    } finally {
      proxy.onRequest = undefined;
      bigProc.kill(); // only if a failure left it running
    }
  };
  const s = await interleave(ctx, "figure 10 head-of-line", {
    alone,
    "during big flush": during,
  }, { warmup: !ctx.quick, runs: ctx.quick ? Math.min(ctx.runs, 2) : ctx.runs });
  const runs = s.alone.length;
  return [
    row({
      figure: "10",
      name: `${at}: 1-file flush during a ${(bigBytes / 1e6).toFixed(0)} MB flush of another ` +
        `model, scoped`,
      unit: "s",
      samples: s["during big flush"],
      peer: "same flush alone",
      peerSamples: s.alone,
      target: { max: 1.5, of: "ratio" },
      note: `big flush ${median(bigTimes)?.toFixed(2)} s median; the small one started at the ` +
        `big one's first blob PUT and ran ${((median(overlap) ?? 0) * 100).toFixed(0)} % ` +
        `(median) of its time beside it; the big one was still running when the small one ` +
        `ended in ${overlaps}/${runs} runs`,
    }),
  ];
}
