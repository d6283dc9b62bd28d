/**
 * The concurrent workload: N writers, each in its own repository on one
 * fresh datastore, run R rounds at the same time. A round is one to three
 * random edits (add, modify or delete a file of a few shared models, often
 * at paths other writers also use) and one command: push (all, or one
 * model), flush, pull (plain, `--ours`, `--theirs`), `status --remote` or
 * `gc` (with its default grace, under the global lock);
 * a fifth of the pushes and flushes take the global lock path
 * (`--disable-cap scopedSync`) while the others take the scoped one.
 *
 * Every command must end with an exit code that is a correct answer
 * (conflicts, exit 4, are; an unexpected error, a datastore error or a lock
 * timeout is not). Afterwards the checks of `_checks.ts` run.
 *
 * @module
 */
import { checkWorld, converge } from "./_checks.ts";
import type { DatastoreEntry, Rng } from "./_common.ts";
import { World, type Writer } from "./_world.ts";

/** What one workload run does. */
export interface WorkloadOptions {
  entry: DatastoreEntry;
  writers: number;
  rounds: number;
  models: number;
  rng: Rng;
  keep: boolean;
}

/** The result of one run: its counts and the properties it found violated. */
export interface PhaseResult {
  counts: Record<string, number>;
  violations: string[];
  /** Where its files are (with --keep). */
  dir?: string;
}

/** Runs the workload on a fresh datastore of `entry`, then the checks. */
export async function runWorkload(o: WorkloadOptions): Promise<PhaseResult> {
  const world = await World.create({
    entry: o.entry,
    label: `${o.entry.name}-workload`,
    writers: o.writers,
    models: o.models,
    rng: o.rng,
  });
  try {
    await Promise.all(world.writers.map((w) => writerLoop(world, w, o.rounds)));
    await converge(world);
    await checkWorld(world, { unreportedSavesOk: false });
    return {
      counts: world.counts,
      violations: world.violations,
      ...(o.keep ? { dir: world.sb.root } : {}),
    };
  } finally {
    await world.dispose({ keep: o.keep });
  }
}

const OPS = {
  push: 20,
  pushModel: 10,
  flush: 25,
  pull: 20,
  pullOurs: 10,
  pullTheirs: 10,
  status: 5,
  gc: 3,
};

async function writerLoop(world: World, w: Writer, rounds: number): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    const edits = w.rng.range(1, 3);
    for (let i = 0; i < edits; i++) await world.edit(w);
    const op = w.rng.weighted(OPS);
    world.count(`workload ${op}`);
    const path = w.rng.chance(0.2) ? ["--disable-cap", "scopedSync"] : [];
    switch (op) {
      case "push":
        await world.run(w, ["push", "--json", ...path], { allowed: [0, 4] });
        break;
      case "pushModel":
        await world.run(w, ["push", "--json", ...path, w.rng.pick(world.models)], {
          allowed: [0, 4],
        });
        break;
      case "flush":
        await world.run(w, ["flush", "--json", ...path], { allowed: [0, 4] });
        break;
      case "pull":
        await world.run(w, ["pull", "--json"], { allowed: [0, 4] });
        break;
      case "pullOurs":
        await world.run(w, ["pull", "--ours", "--json"], { allowed: [0] });
        break;
      case "pullTheirs":
        await world.run(w, ["pull", "--theirs", "--json"], { allowed: [0] });
        break;
      case "status":
        await world.run(w, ["status", "--remote", "--json"], { allowed: [0] });
        break;
      case "gc":
        // The default grace keeps every blob and record a push in flight may
        // need; gc still takes the global lock and drains the model locks.
        await world.run(w, ["gc", "--json"], { allowed: [0] });
        break;
    }
  }
}
