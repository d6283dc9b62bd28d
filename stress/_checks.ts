/**
 * The properties every part of the stress suite checks at its end, on a
 * {@linkcode World}:
 *
 * 1. every repository converges: after each pushes what it has (one at a
 *    time) and then pulls, none has anything pending (`status --remote
 *    --exit-code` is 0) and all hold the same files;
 * 2. every acknowledged commit (a `pushed` or `deleted` row of a push or
 *    flush report) is in the final history (`log --json`) with the
 *    generation, pid and file count reported; `gc --keep` may prune it by
 *    policy once a check has found it (the crash trials check right before
 *    each such gc);
 * 3. no local edit was overwritten without a report: each content a writer
 *    put in its working copy, and did not itself overwrite or delete, is in
 *    a stored commit or in a saved copy a command reported (after a crash,
 *    one under `.modelsync/conflicts/` or `.modelsync/restore-saved/` the
 *    killed command could not report);
 * 4. `verify --read-data` finds no problem;
 * 5. no lock is left, but the stale records of processes killed on purpose.
 *
 * @module
 */
import { snapshot } from "../tests/_helpers.ts";
import type { World, Writer } from "./_world.ts";

/** Pushes what every writer has, one at a time, then pulls everywhere; checks they agree. */
export async function converge(world: World): Promise<void> {
  for (const w of world.writers) {
    const r = await world.run(w, ["flush", "--json"], { allowed: [0, 4] });
    if (r.res.code === 4) {
      await world.run(w, ["pull", "--ours", "--json"], { allowed: [0] });
      await world.run(w, ["flush", "--json"], { allowed: [0] });
    }
  }
  for (const w of world.writers) await world.run(w, ["pull", "--json"], { allowed: [0] });
  const trees: Record<string, string>[] = [];
  for (const w of world.writers) {
    await world.run(w, ["status", "--remote", "--exit-code", "--json"], { allowed: [0] });
    // Files and links only: an empty directory is never synced.
    const tree = await snapshot(w.repo.path("models"));
    trees.push(Object.fromEntries(Object.entries(tree).filter(([, v]) => v !== "dir")));
  }
  for (let i = 1; i < trees.length; i++) {
    const diff = differences(trees[0], trees[i]);
    if (diff.length > 0) {
      world.violation(
        `no convergence: ${world.writers[i].name} differs from ${world.writers[0].name} after ` +
          `the final pull at ${diff.slice(0, 8).join(", ")}${diff.length > 8 ? ", …" : ""}`,
      );
    }
  }
}

function differences(a: Record<string, string>, b: Record<string, string>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => a[k] !== b[k]).sort();
}

interface LogDoc {
  generations: { generation: number; files: number; committedBy: { pid: number } }[];
  end: string;
}

/** Checks properties 2–5 (call {@linkcode converge} first). */
export async function checkWorld(
  world: World,
  opts: { unreportedSavesOk: boolean },
): Promise<void> {
  const first = world.writers[0];
  await checkAcks(world, first);
  await checkEdits(world, opts);
  const v = await world.run(first, ["verify", "--read-data", "--json"], { allowed: [0] });
  const problems = (v.doc?.problems ?? []) as unknown[];
  if (problems.length > 0) {
    world.violation(`verify --read-data: ${JSON.stringify(problems.slice(0, 5))}`);
  }
  await checkLocks(world, first, "at the end");
}

/**
 * Property 2. An acknowledged commit `gc --keep` pruned since a check found
 * it is fine; one pruned before any check found it cannot be judged and is
 * counted apart.
 */
export async function checkAcks(world: World, first: Writer): Promise<void> {
  let unjudged = 0;
  for (const m of world.models) {
    const acks = world.acks.filter((a) => a.model === m);
    if (acks.length === 0) continue;
    const log = await world.run(first, ["log", "--json", m], { allowed: [0] });
    const doc = log.doc as LogDoc | undefined;
    if (doc === undefined) continue;
    const byKey = new Map(doc.generations.map((g) => [`${g.generation}/${g.committedBy.pid}`, g]));
    const oldest = Math.min(...doc.generations.map((g) => g.generation));
    for (const a of acks) {
      const g = byKey.get(`${a.generation}/${a.pid}`);
      if (g !== undefined) {
        a.seen = true;
        if (g.files !== a.files) {
          world.violation(
            `${m} generation ${a.generation}: ${a.what} reported ${a.files} files, ` +
              `history holds ${g.files}`,
          );
        }
      } else if (doc.end === "pruned" && a.generation < oldest) {
        a.pruned = true;
        if (!a.seen) unjudged++;
      } else {
        world.violation(
          `acknowledged commit lost: ${m} generation ${a.generation} by pid ${a.pid} ` +
            `(${a.what}) is not in the final history (generations ${
              doc.generations.map((x) => `${x.generation}/pid ${x.committedBy.pid}`).join(", ")
            })`,
        );
      }
    }
  }
  const seen = world.acks.filter((a) => a.seen);
  world.setCount("acknowledged commits found in history", seen.length);
  const later = seen.filter((a) => a.pruned).length;
  if (later > 0) world.setCount("acknowledged commits found, later pruned by gc --keep", later);
  if (unjudged > 0) world.setCount("acknowledged commits pruned before any check", unjudged);
}

async function checkEdits(world: World, opts: { unreportedSavesOk: boolean }): Promise<void> {
  await world.snapshotCommitted();
  const reported = new Map<string, Set<string>>();
  const anySaved = new Map<string, Set<string>>();
  for (const w of world.writers) {
    reported.set(w.name, await world.savedHashes(w, { reportedOnly: true }));
    anySaved.set(w.name, await world.savedHashes(w, { reportedOnly: false }));
  }
  const tally = new Map<string, number>();
  const add = (k: string) => tally.set(k, (tally.get(k) ?? 0) + 1);
  for (const e of world.edits) {
    if (e.superseded) add("edits overwritten by their own writer");
    else if (world.committed.has(e.sha256)) add("edits found in a commit");
    else if (reported.get(e.writer)!.has(e.sha256)) add("edits found in a reported copy");
    else if (opts.unreportedSavesOk && anySaved.get(e.writer)!.has(e.sha256)) {
      add("edits found in a copy saved by a killed command");
    } else {
      world.violation(
        `local edit lost: ${e.writer}'s ${e.model}/${e.path} (sha256 ${e.sha256.slice(0, 12)}) ` +
          `is in no stored commit and no${opts.unreportedSavesOk ? "" : " reported"} saved copy`,
      );
    }
  }
  for (const [k, n] of tally) world.setCount(k, n);
}

/** Property 5: `lock status` lists no lock but stale ones of processes killed on purpose. */
export async function checkLocks(world: World, w: Writer, when: string): Promise<void> {
  const r = await world.run(w, ["lock", "status", "--json"], { allowed: [0] });
  const locks = (r.doc?.locks ?? []) as { key: string; pid: number; state: string }[];
  for (const l of locks) {
    if (world.killed.has(l.pid) && l.state === "stale") continue;
    world.violation(
      `lock left ${when}: ${l.key} held by pid ${l.pid} (${l.state})${
        world.killed.has(l.pid) ? ", a killed process, yet not stale" : ""
      }`,
    );
  }
}
