/**
 * A CI-sized run of the stress suite (stress/main.ts, `deno task stress`):
 * the concurrent workload, crash trials and fencing trials on a filesystem
 * datastore and on S3 (the local test server; required in CI). A failure
 * lists each violated property and the seed; rerun it with
 * `MODELSYNC_TEST_STRESS_SEED=N`, or the printed `deno task stress` command.
 */
import assert from "node:assert/strict";
import { randomSeed } from "../stress/_common.ts";
import { rerunCommand, runStress, type StressOptions } from "../stress/main.ts";
import { s3TestOptions } from "./_s3.ts";

const SEED = Number(Deno.env.get("MODELSYNC_TEST_STRESS_SEED") ?? randomSeed());

async function ciRun(o: Omit<StressOptions, "seed" | "keep">): Promise<void> {
  const opts = { ...o, seed: SEED, keep: false };
  const s = await runStress(opts);
  assert.deepEqual(
    s.violations,
    [],
    `seed ${s.seed}; rerun with MODELSYNC_TEST_STRESS_SEED=${s.seed} or: ${rerunCommand(opts)}`,
  );
  const counts = (phase: string) => s.phases.find((p) => p.phase === phase)?.counts ?? {};
  // It really ran: commits were acknowledged and found again, processes
  // were killed at their points, fenced holders were refused.
  const workload = counts("workload");
  assert.ok((workload["acknowledged commits"] ?? 0) > 0, JSON.stringify(workload));
  assert.equal(
    workload["acknowledged commits found in history"],
    workload["acknowledged commits"],
    JSON.stringify(workload),
  );
  assert.equal(counts("crash")["killed processes"], o.crashTrials, JSON.stringify(counts("crash")));
  const fencing = counts("fencing");
  const refused = Object.entries(fencing)
    .filter(([k]) => k.startsWith("fencing: commit refused with exit 75"))
    .reduce((n, [, v]) => n + v, 0);
  assert.equal(refused, o.fencing, JSON.stringify(fencing));
}

Deno.test("stress, CI size, filesystem: workload, crash trials and fencing hold every property", () =>
  ciRun({
    writers: 3,
    rounds: 6,
    models: 2,
    crashTrials: 12,
    fencing: 2,
    datastores: ["filesystem"],
  }));

Deno.test({
  name: "stress, CI size, S3: workload, crash trials and fencing hold every property",
  ...s3TestOptions(),
  fn: () =>
    ciRun({
      writers: 3,
      rounds: 4,
      models: 2,
      crashTrials: 6,
      fencing: 2,
      datastores: ["s3"],
    }),
});
