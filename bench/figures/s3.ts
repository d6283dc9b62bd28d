/**
 * Figure 5, S3 on the local test server (`eval "$(scripts/services.sh start)"`
 * exports MODELSYNC_TEST_S3_ENDPOINT): 10,000 files of 1 KiB in 100 models
 * (quick: fewer). Every client, modelsync and rclone alike, goes through the
 * counting proxy `tests/_s3_proxy.ts`, so both pay the same hop and every
 * request is counted.
 *
 * - first push to an empty prefix against `rclone copy --transfers 16`;
 * - no-op push and no-op pull: requests (target: the listing only, ≤ 3) and
 *   time against `rclone sync --dry-run` of the same tree to rclone's copy.
 *
 * The test server (moto) is slow, about 100 small PUTs a second: only the
 * ratios mean anything. Skipped, with the reason, when the server or the S3
 * provider is unavailable.
 *
 * @module
 */
import { join } from "node:path";
import { type BenchContext, interleave } from "../_context.ts";
import { BenchError, cli, expectSummary, run } from "../_run.ts";
import { writeModels } from "../_tree.ts";
import { peerRow, type Row, row, type RowInput, skipped } from "../report.ts";
import { type S3Bench, s3Unavailable, withS3 } from "../_s3.ts";

/** Runs figure 5; returns its rows (SKIP rows with the reason when it cannot run). */
export async function s3Figure(ctx: BenchContext): Promise<Row[]> {
  const why = await s3Unavailable();
  if (why !== null) {
    return [
      skipped("5", "S3 first push", why, { peer: "rclone copy --transfers 16" }),
      skipped("5", "S3 no-op push / pull", why, { peer: "rclone sync --dry-run" }),
    ];
  }
  return await withS3(ctx, { latencyMs: 0, name: "figure 5" }, (s3) => measure(ctx, s3));
}

async function measure(ctx: BenchContext, s3: S3Bench): Promise<Row[]> {
  const { s3Models, s3Files, fileSize } = ctx.sizes;
  const total = s3Models * s3Files;
  const files = `${total.toLocaleString("en-US")} files`;
  const { proxy, bucket, dir, env, rcloneEnv } = s3;
  const repo = join(dir, "repo");
  const trash = join(dir, "trash");
  await Deno.mkdir(trash, { recursive: true });
  await writeModels(join(repo, "models"), { models: s3Models, files: s3Files, size: fileSize });
  const requests: Record<string, number[]> = {
    "first push": [],
    "rclone copy": [],
    "no-op push": [],
    "no-op pull": [],
    "rclone sync --dry-run": [],
  };
  const counted = async (what: string, round: number, fn: () => Promise<number>) => {
    proxy.reset();
    const s = await fn();
    if (round > 0) requests[what].push(proxy.count);
    return s;
  };

  let seq = 0;
  let rcloneCopy = "";
  const firstPush = (round: number) =>
    counted("first push", round, async () => {
      const n = ++seq;
      await Deno.rename(join(repo, ".modelsync"), join(trash, `modelsync-${n}`)).catch(() => {});
      await Deno.mkdir(repo, { recursive: true });
      await Deno.writeTextFile(
        join(repo, "modelsync.yaml"),
        `datastore: ${s3.spec(`modelsync-${n}`)}\n`,
      );
      await cli(["init"], { cwd: repo, env });
      proxy.reset();
      const r = await cli(["push", "--json"], { cwd: repo, env });
      expectSummary(r, { pushed: s3Models, failed: 0 });
      return r.ms / 1000;
    });
  const copy = (round: number) =>
    counted("rclone copy", round, async () => {
      rcloneCopy = `bench:${bucket}/rclone-${++seq}`;
      const r = await run(
        ["rclone", "copy", "--transfers", "16", join(repo, "models"), rcloneCopy],
        {
          cwd: dir,
          env: rcloneEnv,
        },
      );
      return r.ms / 1000;
    });
  const hasRclone = ctx.peers.rclone !== null && ctx.peers.rclone !== undefined;
  // A first push to moto costs about 1 s per 100 files: no warm-up, fewer runs when full size.
  const slowRuns = { runs: Math.min(ctx.runs, 2), warmup: false };
  const first = await interleave(
    ctx,
    "figure 5 first push",
    hasRclone ? { modelsync: firstPush, "rclone copy": copy } : { modelsync: firstPush },
    slowRuns,
  );

  const noopPush = (round: number) =>
    counted("no-op push", round, async () => {
      const r = await cli(["push", "--json"], { cwd: repo, env });
      expectSummary(r, { pushed: 0, failed: 0, conflict: 0 });
      return r.ms / 1000;
    });
  const noopPull = (round: number) =>
    counted("no-op pull", round, async () => {
      const r = await cli(["pull", "--json"], { cwd: repo, env });
      expectSummary(r, { pulled: 0, failed: 0, conflict: 0 });
      return r.ms / 1000;
    });
  const syncDry = (round: number) =>
    counted("rclone sync --dry-run", round, async () => {
      const r = await run(["rclone", "sync", "--dry-run", join(repo, "models"), rcloneCopy], {
        cwd: dir,
        env: rcloneEnv,
      });
      if (/Skipped (copy|delete)/.test(r.stderr)) {
        throw new BenchError("found differences between identical trees", r);
      }
      return r.ms / 1000;
    });
  const steps: Record<string, (round: number) => Promise<number>> = {
    "no-op push": noopPush,
    "no-op pull": noopPull,
  };
  if (hasRclone) steps["rclone sync --dry-run"] = syncDry;
  const noop = await interleave(ctx, "figure 5 no-op", steps, {
    runs: Math.min(ctx.runs, ctx.quick ? 2 : 3),
  });

  const missing = hasRclone ? null : "rclone not installed";
  const vsPeer = (input: RowInput): Row => peerRow(input, missing);
  const reqNote = (what: string) => `${requests[what].join(", ")} requests`;
  return [
    vsPeer({
      figure: "5",
      name: `S3 first push, ${files}`,
      unit: "s",
      samples: first.modelsync,
      peer: "rclone copy --transfers 16",
      peerSamples: first["rclone copy"],
      target: { max: 1.0, of: "ratio" },
      note: `modelsync ${reqNote("first push")}; rclone ${reqNote("rclone copy")}; no warm-up`,
    }),
    row({
      figure: "5",
      name: `S3 no-op push, requests`,
      unit: "requests",
      samples: requests["no-op push"],
      target: { max: 3, of: "value" },
    }),
    row({
      figure: "5",
      name: `S3 no-op pull, requests`,
      unit: "requests",
      samples: requests["no-op pull"],
      target: { max: 3, of: "value" },
    }),
    vsPeer({
      figure: "5",
      name: `S3 no-op push, ${files}`,
      unit: "s",
      samples: noop["no-op push"],
      peer: "rclone sync --dry-run",
      peerSamples: noop["rclone sync --dry-run"],
      target: { max: 0.05, of: "ratio" },
      note: hasRclone ? `rclone ${reqNote("rclone sync --dry-run")}` : undefined,
    }),
    vsPeer({
      figure: "5",
      name: `S3 no-op pull, ${files}`,
      unit: "s",
      samples: noop["no-op pull"],
      peer: "rclone sync --dry-run",
      peerSamples: noop["rclone sync --dry-run"],
      target: { max: 0.05, of: "ratio" },
    }),
  ];
}
