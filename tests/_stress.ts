/**
 * A CI-sized run of the stress suite (stress/main.ts, `deno task stress`)
 * for the end-to-end tests: tests/stress_test.ts (filesystem) and
 * tests/s3_stress_test.ts (S3, the local test server; required in CI) call
 * it. A failure lists each violated property and the seed; rerun it with
 * `MODELSYNC_TEST_STRESS_SEED=N`, or the printed `deno task stress` command.
 *
 * @module
 */
import assert from "node:assert/strict";
import { randomSeed } from "../stress/_common.ts";
import { rerunCommand, runStress, type StressOptions } from "../stress/main.ts";

const SEED = Number(Deno.env.get("MODELSYNC_TEST_STRESS_SEED") ?? randomSeed());

/**
 * Runs the workload, crash trials and fencing trials with `o` and checks
 * that no property was violated and that each phase really ran: commits
 * were acknowledged and found again, processes were killed at their points,
 * fenced holders were refused.
 */
export async function ciStressRun(o: Omit<StressOptions, "seed" | "keep">): Promise<void> {
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
