/**
 * Crash trials: one command at a time (push, flush, pull, restore or gc) is
 * run through `crashpoint.ts` and SIGKILLed at a seeded provider operation:
 * before or after the N-th blob upload or download, between the uploads and
 * the commit (before the history record), between the history record and
 * the head, right after the head moved, right after its lock was taken,
 * around the release of its lock, around gc's deletions. Then:
 *
 * - right after the kill, `verify --read-data` is clean (the datastore never
 *   names a missing or damaged blob, whatever was cut short);
 * - the same command, rerun without the decorator, ends with a correct exit
 *   code (it completes, or reports a real conflict);
 * - `lock status` shows no lock but stale ones of killed processes;
 * - every few trials and at the end, the checks of `_checks.ts`
 *   (convergence, acknowledged commits, no edit lost, verify, locks).
 *
 * A trial whose command ends before its point is reached (the point was
 * beyond what it had to do) is counted as a miss; trials go on until the
 * asked number of processes was killed.
 *
 * @module
 */
import { checkAcks, checkLocks, checkWorld, converge } from "./_checks.ts";
import type { DatastoreEntry, Rng } from "./_common.ts";
import { type Outcome, type RunOpts, World, type Writer } from "./_world.ts";
import { type CrashAction, type CrashPoint, formatCrashPoint } from "./crashpoint.ts";
import type { PhaseResult } from "./workload.ts";

/** What a series of crash trials does. */
export interface CrashOptions {
  entry: DatastoreEntry;
  /** Processes to kill. */
  kills: number;
  rng: Rng;
  keep: boolean;
  log?: (line: string) => void;
}

/** The full checks run after this many trials (and at the end). */
const CHECK_EVERY = 25;

const OPS = { push: 3, flush: 3, pull: 3, restore: 2, gc: 2 };
type Op = keyof typeof OPS;

/** Runs crash trials on a fresh datastore of `entry` until `kills` processes were killed. */
export async function runCrashTrials(o: CrashOptions): Promise<PhaseResult> {
  const world = await World.create({
    entry: o.entry,
    label: `${o.entry.name}-crash`,
    writers: 3,
    models: 3,
    rng: o.rng,
  });
  const rng = o.rng.fork("trials");
  try {
    let kills = 0;
    for (let trial = 1; kills < o.kills && trial <= o.kills * 3; trial++) {
      const op = rng.weighted(OPS);
      if (await runTrial(world, rng, op)) kills++;
      if (trial % CHECK_EVERY === 0) {
        await converge(world);
        await checkWorld(world, { unreportedSavesOk: true });
        o.log?.(`${o.entry.name}: crash trial ${trial}, ${kills} killed`);
      }
    }
    await converge(world);
    await checkWorld(world, { unreportedSavesOk: true });
    if (kills < o.kills) {
      world.violation(
        `only ${kills} of ${o.kills} crash points were reached in ${o.kills * 3} trials`,
      );
    }
    return {
      counts: world.counts,
      violations: world.violations,
      ...(o.keep ? { dir: world.sb.root } : {}),
    };
  } finally {
    await world.dispose({ keep: o.keep });
  }
}

function point(
  op: CrashPoint["op"],
  n: number,
  action: CrashAction,
  prefix?: string,
): CrashPoint {
  return { op, n, action, ...(prefix === undefined ? {} : { prefix }) };
}

const either = (rng: Rng): CrashAction => (rng.chance(0.5) ? "before" : "after");

/** One trial; true when its process was killed at its point. */
async function runTrial(world: World, rng: Rng, op: Op): Promise<boolean> {
  const victim = rng.pick(world.writers);
  const others = world.writers.filter((w) => w !== victim);
  const model = rng.pick(world.models);
  let args: string[];
  let crash: CrashPoint;
  let allowed = [0, 4];
  if (op === "push" || op === "flush") {
    const edits = rng.range(1, 4);
    for (let i = 0; i < edits; i++) await world.edit(victim, rng.chance(0.7) ? model : undefined);
    if (rng.chance(0.3)) await commitElsewhere(world, rng.pick(others), model);
    const path = rng.chance(0.25) ? ["--disable-cap", "scopedSync"] : [];
    args = op === "push"
      ? ["push", "--json", ...path, ...(rng.chance(0.3) ? [model] : [])]
      : ["flush", "--json", ...path];
    crash = rng.pick([
      point("putBlob", rng.range(1, edits), either(rng)),
      point("putBlob", rng.range(1, edits), either(rng)),
      point("write", 1, either(rng), "history/"),
      point("write", 1, either(rng), "heads/"),
      point("write", rng.range(1, 2), either(rng), "heads/"),
      point("write", 1, "after", "leases/"),
      point("deleteRecord", 1, either(rng), "leases/"),
    ]);
  } else if (op === "pull") {
    const source = rng.pick(others);
    const edits = rng.range(1, 4);
    for (let i = 0; i < edits; i++) await world.edit(source, model);
    await commitElsewhere(world, source, model, 0);
    if (rng.chance(0.4)) await world.edit(victim, model);
    const resolution = rng.pick([[], [], ["--ours"], ["--theirs"]]);
    args = ["pull", "--json", ...resolution];
    if (resolution.length > 0) allowed = [0];
    crash = rng.pick([
      point("getBlob", rng.range(1, edits), either(rng)),
      point("getBlob", rng.range(1, edits), either(rng)),
      point("getRecord", 1, "after", "heads/"),
    ]);
  } else if (op === "restore") {
    const prepared = await prepareRestore(world, rng, victim, model);
    if (prepared === null) return false;
    args = prepared;
    allowed = [0];
    crash = rng.pick([
      point("getBlob", rng.range(1, 3), either(rng)),
      point("getRecord", 1, "after", "history/"),
      point("getRecord", 1, "after", "heads/"),
    ]);
  } else {
    // gc may prune what it removes: note every stored content first.
    await world.snapshotCommitted();
    const keep = rng.chance(0.2) ? ["--keep", String(rng.range(3, 6))] : [];
    // Every acknowledged commit is checked before gc may prune it.
    if (keep.length > 0) await checkAcks(world, victim);
    const dry = await world.run(victim, ["gc", "--grace", "0s", "--dry-run", "--json", ...keep], {
      allowed: [0],
    });
    const records = ((dry.doc?.records ?? []) as unknown[]).length;
    const blobs = ((dry.doc?.blobs ?? []) as unknown[]).length;
    args = ["gc", "--grace", "0s", "--json", ...keep];
    allowed = [0];
    crash = rng.pick([
      point("write", 1, "after", "leases/"),
      ...(blobs > 0 ? [0, 1].map(() => point("deleteBlob", rng.range(1, blobs), either(rng))) : []),
      ...(records > 0
        ? [0, 1].map(() => point("deleteRecord", rng.range(1, records), either(rng), "history/"))
        : []),
      ...(keep.length > 0 && records > 0 ? [point("write", 1, either(rng), "history/")] : []),
    ]);
  }
  const first = await world.run(victim, args, { allowed, crash });
  const name = `${op} at ${formatCrashPoint(crash).replace(/#\d+/, "#N")}`;
  if (!first.killed) {
    world.count(`crash trials missed (the command ended first): ${op}`);
    await settle(world, victim, first, { allowed });
    return false;
  }
  world.count(`killed: ${name}`);
  world.count(`killed processes during ${op}`);
  world.count("killed processes");
  // pull and restore only read the datastore and take no datastore lock.
  const writes = op === "push" || op === "flush" || op === "gc";
  if (writes) {
    // Whatever was cut short, the datastore names only whole, stored blobs.
    const v = await world.run(others[0], ["verify", "--read-data", "--json"], { allowed: [0] });
    if (v.res.code !== 0) world.violation(`verify right after the kill of ${name} failed`);
  }
  const rerun = await world.run(victim, args, { allowed });
  await settle(world, victim, rerun, { allowed });
  if (op === "restore") await world.run(victim, ["push", "--json", model], { allowed: [0] });
  if (writes) await checkLocks(world, others[0], `after the rerun of ${name}`);
  return true;
}

/** `other` edits `model` and pushes it (a commit the victim has not seen). */
async function commitElsewhere(world: World, other: Writer, model: string, edits = 1) {
  for (let i = 0; i < edits; i++) await world.edit(other, model);
  await pushResolved(world, other, ["push", "--json", model]);
}

/** Pushes; on a conflict keeps the local version and pushes again. */
async function pushResolved(world: World, w: Writer, args: string[]): Promise<void> {
  const r = await world.run(w, args, { allowed: [0, 4] });
  if (r.res.code === 4) {
    await world.run(w, ["pull", "--ours", "--json"], { allowed: [0] });
    await world.run(w, args, { allowed: [0] });
  }
}

/** A conflict left by a trial is resolved at once (keeping the local version). */
async function settle(world: World, w: Writer, r: Outcome, o: Pick<RunOpts, "allowed">) {
  if (r.killed || r.res.code !== 4 || !o.allowed.includes(4)) return;
  await world.run(w, ["pull", "--ours", "--json"], { allowed: [0] });
  await world.run(w, ["push", "--json"], { allowed: [0] });
}

/**
 * Pushes what `victim` has, so that it has no local change, and returns the
 * arguments of a restore of `model` to one of its older generations
 * (`--force` over a new local edit half the time), or null when the model
 * has a single generation.
 */
async function prepareRestore(
  world: World,
  rng: Rng,
  victim: Writer,
  model: string,
): Promise<string[] | null> {
  await pushResolved(world, victim, ["flush", "--json"]);
  const older = (await (await world.reader()).reachable(model)).slice(1);
  if (older.length === 0) return null;
  const force = rng.chance(0.5);
  if (force) await world.edit(victim, model);
  return ["restore", `${model}@${rng.pick(older)}`, "--json", ...(force ? ["--force"] : [])];
}
