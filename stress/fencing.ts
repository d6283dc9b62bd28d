/**
 * Fencing trials: a writer holding its lock is stopped (SIGSTOP, by
 * `crashpoint.ts` at a provider operation) while another writer commits the
 * same model; once it is continued (SIGCONT) its commit must be refused
 * with exit 75 and nothing the other committed may be overwritten.
 *
 * Each trial draws one of each:
 *
 * - how the lock is lost: `expired` (a 2 s lease; the holder stays stopped
 *   past it and the other writer takes the lock over as stale), or
 *   `released` (the default 30 s lease; an operator runs `lock release
 *   --force`, the other writer takes the free lock, and the holder is
 *   continued long before its next renewal, so only the check the sync
 *   engine makes before committing can stop it);
 * - where the holder stops: right after its lock record was written
 *   (before it read the head), or right before its history record (after
 *   the engine confirmed its lease: the head it read is then stale, so its
 *   compare-and-swap fails and its retry must stop);
 * - the lock path of the holder (scoped, or global with
 *   `--disable-cap scopedSync`) and its command (push or flush).
 *
 * The two writers edit different files, so without fencing the holder would
 * rebase onto the other's commit and succeed. Then the checks of
 * `_checks.ts` run.
 *
 * @module
 */
import { checkWorld, converge } from "./_checks.ts";
import { type DatastoreEntry, processState, type Rng } from "./_common.ts";
import { README, tail, World } from "./_world.ts";
import type { CrashPoint } from "./crashpoint.ts";
import type { PhaseResult } from "./workload.ts";
import { sha256 } from "../tests/_helpers.ts";

/** What a series of fencing trials does. */
export interface FencingOptions {
  entry: DatastoreEntry;
  trials: number;
  rng: Rng;
  keep: boolean;
  log?: (line: string) => void;
}

/** One trial's draw. */
interface Draw {
  loss: "expired" | "released";
  stop: "acquired" | "before-commit";
  path: "scoped" | "global";
  command: "push" | "flush";
}

/** Every combination, in a seeded order: the first N trials cover as many as they can. */
function draws(rng: Rng, n: number): Draw[] {
  const all: Draw[] = [];
  for (const loss of ["released", "expired"] as const) {
    for (const stop of ["acquired", "before-commit"] as const) {
      for (const path of ["scoped", "global"] as const) {
        for (const command of ["push", "flush"] as const) all.push({ loss, stop, path, command });
      }
    }
  }
  // Alternate the losses so that even two trials cover both.
  const by = (l: Draw["loss"]) => shuffle(rng, all.filter((d) => d.loss === l));
  const [a, b] = [by("released"), by("expired")];
  const order = a.flatMap((d, i) => [d, b[i]]);
  return Array.from({ length: n }, (_, i) => order[i % order.length]);
}

function shuffle<T>(rng: Rng, items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Runs `trials` fencing trials on a fresh datastore of `entry`. */
export async function runFencing(o: FencingOptions): Promise<PhaseResult> {
  const world = await World.create({
    entry: o.entry,
    label: `${o.entry.name}-fencing`,
    writers: 2,
    models: 1,
    rng: o.rng,
  });
  try {
    const list = draws(o.rng.fork("draws"), o.trials);
    for (let i = 0; i < list.length; i++) {
      await trial(world, list[i], i);
      o.log?.(`${o.entry.name}: fencing trial ${i + 1}/${list.length} done`);
    }
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

async function waitStopped(pid: number, done: () => boolean): Promise<boolean> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (done()) return false;
    if ((await processState(pid)) === "T") return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

async function trial(world: World, d: Draw, index: number): Promise<void> {
  const [holder, taker] = world.writers;
  const model = `fence/t${index}`;
  world.models.push(model);
  const what = `fencing trial ${index} (${d.loss}, stopped ${d.stop}, ${d.path} ${d.command})`;
  await holder.repo.write(`models/${model}/${README}`, `${model}\n`);
  await world.run(holder, ["push", "--json", model], { allowed: [0] });
  await world.run(taker, ["pull", "--json", model], { allowed: [0] });
  const mine = await world.write(holder, model, "from-holder.txt");
  await world.write(taker, model, "from-taker.txt");

  const stop: CrashPoint = d.stop === "acquired"
    ? { op: "write", prefix: "leases/", n: 1, action: "stop-after" }
    : { op: "write", prefix: "history/", n: 1, action: "stop-before" };
  const global = d.path === "global" ? ["--disable-cap", "scopedSync"] : [];
  const args = d.command === "push"
    ? ["push", "--json", ...global, model]
    : ["flush", "--json", ...global];
  const p = world.spawn(holder, args, {
    crash: stop,
    env: { MODELSYNC_LOCK_TTL: d.loss === "expired" ? "2s" : "30s" },
  });
  if (!(await waitStopped(p.pid, () => p.exited))) {
    world.absorb(holder, p, await p.done, { allowed: [] });
    world.violation(`${what}: the holder never reached its stop point\n${tail(await p.done)}`);
    return;
  }
  world.count(`fencing: holder stopped (${d.stop})`);
  try {
    const locks = await world.run(taker, ["lock", "status", "--json"], { allowed: [0] });
    const held = ((locks.doc?.locks ?? []) as { key: string; pid: number; state: string }[])
      .find((l) => l.pid === p.pid);
    if (held === undefined) {
      world.violation(`${what}: the stopped holder holds no lock\n${locks.res.stdout}`);
      return;
    }
    if (d.loss === "released") {
      const target = held.key === "global" ? ["--global"] : [held.key];
      await world.run(taker, ["lock", "release", "--force", "--json", ...target], {
        allowed: [0],
      });
    }
    const commit = await world.run(taker, ["push", "--json", model], { allowed: [0] });
    if (d.loss === "expired" && held.key !== "global" && !/Took over/.test(commit.res.stderr)) {
      world.violation(
        `${what}: the other writer did not take the expired lock over\n${tail(commit.res)}`,
      );
    }
  } finally {
    Deno.kill(p.pid, "SIGCONT");
  }
  const res = await p.done;
  const out = world.absorb(holder, p, res, { allowed: [75] });
  const row = ((out.doc?.models ?? []) as { model: string; status: string }[])
    .find((m) => m.model === model);
  if (row?.status !== "lease-lost") {
    world.violation(`${what}: the holder's ${model} ended ${row?.status}, not lease-lost`);
  } else world.count(`fencing: commit refused with exit 75 (${d.loss})`);

  // Nothing overwritten: the head is the other writer's commit, and the
  // holder committed nothing after it was continued.
  const log = await world.run(taker, ["log", "--json", model], { allowed: [0] });
  const gens = (log.doc?.generations ?? []) as {
    generation: number;
    committedBy: { pid: number };
  }[];
  const takerAck = world.acks.findLast((a) => a.model === model && a.writer === taker.name);
  if (gens[0]?.committedBy.pid !== takerAck?.pid) {
    world.violation(
      `${what}: the head is not the other writer's commit: ${JSON.stringify(gens[0])}`,
    );
  }
  if (gens.some((g) => g.committedBy.pid === p.pid)) {
    world.violation(`${what}: the fenced holder (pid ${p.pid}) committed after losing its lock`);
  }
  await world.run(taker, ["status", "--remote", "--exit-code", "--json", model], { allowed: [0] });
  const kept = await holder.repo.readBytes(`models/${model}/from-holder.txt`);
  if (sha256(kept) !== mine.sha256) world.violation(`${what}: the holder's own edit was changed`);
  const after = await world.run(taker, ["lock", "status", "--json"], { allowed: [0] });
  const left = (after.doc?.locks ?? []) as unknown[];
  if (left.length > 0) {
    world.violation(`${what}: locks left: ${JSON.stringify(left)}\nthe holder:\n${tail(res)}`);
  }
  // The holder's edit goes in now (a rebase onto the other's commit), so the
  // next trial's flush has only its own model to push.
  await world.run(holder, ["push", "--json", model], { allowed: [0] });
  await world.run(taker, ["pull", "--json", model], { allowed: [0] });
}
