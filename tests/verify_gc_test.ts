/**
 * End-to-end `verify` and `gc` on a filesystem datastore: a deleted blob, a
 * corrupted blob (`--read-data`), broken and corrupt history records; gc's
 * dry run, its grace period and orphan records while a push runs at the same
 * time, --keep and --keep-within, and that nothing a kept generation names
 * is ever lost (checked with verify and a fresh pull).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  describe,
  expectCode,
  expectJson,
  expectOneLineError,
  readRecordDir,
  type Repo,
  reportByModel,
  Sandbox,
  sha256,
  slowStore,
  snapshot,
  waitFor,
  writeModelFiles,
  writeRecordDir,
} from "./_helpers.ts";

const DAY = 86_400_000;

interface Problem {
  model: string;
  generation: number | null;
  path: string | null;
  blob: string | null;
  problem: string;
  detail: string;
}

async function verify(repo: Repo, args: string[], code: number): Promise<Problem[]> {
  const res = expectCode(await repo.run(["verify", "--json", ...args]), code, "verify");
  return expectJson(res, "modelsync.verify/1").problems as Problem[];
}

/** Sets the mtime of a file, or of every version file of a record directory. */
async function age(path: string, msAgo: number): Promise<void> {
  const when = new Date(Date.now() - msAgo);
  const st = await Deno.stat(path);
  if (!st.isDirectory) return await Deno.utime(path, when, when);
  for await (const e of Deno.readDir(path)) await Deno.utime(join(path, e.name), when, when);
}

/** Stores `text` as a blob the way the filesystem provider would, and returns its hash. */
async function plantBlob(sb: Sandbox, text: string, msAgo: number): Promise<string> {
  const hash = sha256(text);
  const p = sb.datastore.blobPath(hash);
  await Deno.mkdir(join(p, ".."), { recursive: true });
  await Deno.writeTextFile(p, text);
  if (msAgo > 0) await age(p, msAgo);
  return hash;
}

/** The history record directory of one generation of a model. */
async function historyDir(sb: Sandbox, model: string, generation: number): Promise<string> {
  const m = (await sb.datastore.manifests()).find((x) =>
    x.model === model && x.manifest.generation === generation
  );
  assert.ok(m, `no history record of ${model} generation ${generation}`);
  return join(sb.datastore.dir, m.file);
}

Deno.test("verify is clean on a healthy datastore, finds a deleted blob (exit 6, naming model, generation and path), and --read-data a corrupted one", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: these tests name single blobs
  await a.write("models/vpc/m1/a.txt", "a one\n");
  await a.write("models/vpc/m1/b.txt", "b stays\n");
  expectCode(await a.run(["push"]), 0, "push 1");
  await a.write("models/vpc/m1/a.txt", "a two\n");
  expectCode(await a.run(["push"]), 0, "push 2");
  await a.write("models/vision/r1/w.bin", "weights\n");
  expectCode(await a.run(["push"]), 0, "push another model");

  assert.deepEqual(await verify(a, [], 0), []);
  const clean = expectCode(await a.run(["verify", "--read-data"]), 0, "verify --read-data");
  assert.match(
    clean.stdout,
    /^Checked 2 models, 3 generations, 4 blobs, read 28 B: no problems\.$/m,
  );

  // b.txt's blob is named by both generations of vpc/m1.
  await Deno.remove(sb.datastore.blobPath(sha256("b stays\n")));
  const problems = await verify(a, [], 6);
  assert.deepEqual(
    problems.map((p) => [p.model, p.generation, p.path, p.problem, p.blob]),
    [
      ["vpc/m1", 2, "b.txt", "missing-blob", sha256("b stays\n")],
      ["vpc/m1", 1, "b.txt", "missing-blob", sha256("b stays\n")],
    ],
  );
  const human = await a.run(["verify"]);
  const err = expectOneLineError(human, 6, "verify (human)");
  assert.match(err, /verify found 2 problems/);
  assert.match(
    human.stdout,
    /^missing-blob\s+vpc\/m1\s+generation 2\s+b\.txt\s+blob [0-9a-f]{12}…$/m,
  );
  assert.match(human.stdout, /modelsync push vpc\/m1/);
  // Named models only: the other model is clean.
  assert.deepEqual(await verify(a, ["vision/r1"], 0), []);
  assert.match(expectOneLineError(await a.run(["verify", "vpc/none"]), 3), /vpc\/none/);

  // Same size, other content: only reading the data finds it.
  await Deno.writeTextFile(sb.datastore.blobPath(sha256("a one\n")), "a 0ne\n");
  assert.equal((await verify(a, [], 6)).length, 2, "without --read-data only the missing blob");
  const deep = await verify(a, ["--read-data"], 6);
  const corrupt = deep.filter((p) => p.problem === "corrupt-blob");
  assert.deepEqual(corrupt.map((p) => [p.model, p.generation, p.path]), [["vpc/m1", 1, "a.txt"]]);
  assert.match(corrupt[0].detail, new RegExp(`hash to ${sha256("a 0ne\n")}`));
  assert.match(corrupt[0].detail, /delete it from the datastore/);

  // The remedy works: a push of the model stores the lost blob again.
  expectCode(await a.run(["push", "vpc/m1"]), 0, "push vpc/m1 repairs b.txt");
  assert.deepEqual((await verify(a, ["--read-data"], 6)).map((p) => p.path), ["a.txt"]);
});

Deno.test("verify reports a corrupt history record and a broken parent link; log shows what it can and exits 6", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: these tests name single blobs
  for (const v of [1, 2, 3]) {
    await a.write("models/vpc/m1/a.txt", `a ${v}\n`);
    expectCode(await a.run(["push"]), 0, `push ${v}`);
  }
  const g2 = await historyDir(sb, "vpc/m1", 2);
  const original = (await readRecordDir(g2))!;
  await writeRecordDir(g2, "{not json");
  const corrupt = await verify(a, [], 6);
  assert.deepEqual(corrupt.map((p) => [p.problem, p.generation]), [["corrupt-record", 2]]);
  assert.match(corrupt[0].detail, /not valid JSON/);

  await writeRecordDir(g2, original);
  assert.deepEqual(await verify(a, [], 0), []);
  await Deno.remove(g2, { recursive: true });
  const broken = await verify(a, [], 6);
  assert.deepEqual(broken.map((p) => [p.problem, p.generation]), [["missing-record", 2]]);
  assert.match(broken[0].detail, /Generation 3 names parent generation 2.*not removed by gc/);

  const log = await a.run(["log", "vpc/m1"]);
  assert.match(
    expectOneLineError(log, 6, "log of a broken history"),
    /History of vpc\/m1 is broken/,
  );
  assert.match(log.stdout, /^3\s/m);
  assert.doesNotMatch(log.stdout, /^1\s/m);
});

Deno.test("gc --dry-run lists, and gc removes only unreferenced old blobs and old orphan records while a push runs; nothing a kept generation names is lost", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: these tests name single blobs
  const b = await sb.repo("b");
  await b.noPacks(); // a blob per file: these tests name single blobs
  await a.write("models/vpc/m1/a.txt", "a one\n");
  await a.write("models/vpc/m1/b.txt", "b stays\n");
  expectCode(await a.run(["push"]), 0, "push 1");
  await a.write("models/vpc/m1/a.txt", "a two\n");
  expectCode(await a.run(["push"]), 0, "push 2");
  // Everything stored so far is two days old: gc keeps it only because a kept generation names it.
  const referenced = await sb.datastore.blobs();
  for (const h of referenced) await age(sb.datastore.blobPath(h), 2 * DAY);
  const oldOrphan = await plantBlob(sb, "left by a killed push\n", 2 * DAY);
  const youngOrphan = await plantBlob(sb, "uploaded a moment ago\n", 0);
  // A commit that lost its race two days ago: not reachable from the head.
  const lostBlob = await plantBlob(sb, "named only by a lost commit\n", 2 * DAY);
  const head = (await sb.datastore.current("vpc/m1"))!;
  const lost = {
    ...head,
    commit: "0123456789abcdef",
    files: [{ path: "a.txt", sha256: lostBlob, size: 28, executable: false }],
    committedAt: new Date(Date.now() - 2 * DAY).toISOString(),
  };
  const lostKey = `history/vpc/m1/000000000002-${lost.commit}`;
  await writeRecordDir(join(sb.datastore.dir, lostKey), JSON.stringify(lost));
  await age(join(sb.datastore.dir, lostKey), 2 * DAY);

  // A push of another model, slowed down, runs while gc plans and runs.
  const m2 = await writeModelFiles(b, "vpc/m2", { count: 12, size: 300, seed: 5 });
  const slow = slowStore(sb, { putBlob: 300 });
  const push = b.spawn(["push", "--jobs", "1", ...slow.args], { env: slow.env });
  const m2Blobs = new Set([...m2.values()].map((bytes) => sha256(bytes)));
  await waitFor("the push's first blob", async () => {
    if (push.exited) throw new Error(`push ended early\n${describe(await push.done)}`);
    return (await sb.datastore.blobs()).some((h) => m2Blobs.has(h));
  });

  const dry = expectCode(await a.run(["gc", "--dry-run", "--json"]), 0, "gc --dry-run");
  const plan = expectJson(dry, "modelsync.gc/1");
  assert.equal(plan.dryRun, true);
  assert.equal(plan.lockPath, "none");
  assert.deepEqual(
    (plan.records as { key: string; reason: string }[]).map((r) => [r.key, r.reason]),
    [[lostKey, "orphan"]],
  );
  assert.deepEqual(
    (plan.blobs as { hash: string }[]).map((x) => x.hash).sort(),
    [oldOrphan, lostBlob].sort(),
  );
  assert.ok(
    (plan.kept as { youngBlobs: number }).youngBlobs >= 2,
    "the young orphan and the push's",
  );
  const human = expectCode(await a.run(["gc", "--dry-run"]), 0, "gc --dry-run (human)");
  assert.match(human.stdout, new RegExp(`^would remove  blob ${oldOrphan}  22 B$`, "m"));
  assert.match(human.stdout, new RegExp(`^would remove  ${lostKey}  \\(orphan`, "m"));
  assert.match(
    human.stdout,
    /^Would remove 0 generations and 1 orphan record, and 2 blobs \(50 B\)\./m,
  );
  assert.doesNotMatch(dry.stderr, /Waiting for/, "the dry run waits for no lock");
  assert.equal(push.exited, false, "the push still runs");
  assert.ok(
    (await sb.datastore.blobs()).includes(oldOrphan),
    "the dry run removed nothing",
  );

  const gc = a.spawn(["gc", "--json"]);
  const pushed = await push.done;
  expectCode(pushed, 0, "the concurrent push");
  const done = expectJson(expectCode(await gc.done, 0, "gc"), "modelsync.gc/1");
  assert.equal(done.lockPath, "global");
  assert.deepEqual(done.removed, { generations: 0, orphans: 1, blobs: 2, bytes: 50 });

  const left = new Set(await sb.datastore.blobs());
  assert.equal(left.has(oldOrphan), false, "an old unreferenced blob is removed");
  assert.equal(left.has(lostBlob), false, "the lost commit's blob is removed with it");
  assert.equal(left.has(youngOrphan), true, "a blob within the grace period stays");
  for (const h of [...referenced, ...m2Blobs]) assert.ok(left.has(h), `blob ${h} is named: kept`);
  assert.equal(await readRecordDir(join(sb.datastore.dir, lostKey)), null, "orphan record removed");
  assert.deepEqual(await verify(a, ["--read-data"], 0), []);
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
  const c = await sb.repo("c");
  await c.noPacks(); // a blob per file: these tests name single blobs
  expectCode(await c.run(["pull"]), 0, "a fresh pull");
  assert.deepEqual(await snapshot(c.modelDir("vpc/m1")), await snapshot(a.modelDir("vpc/m1")));
  assert.deepEqual(await snapshot(c.modelDir("vpc/m2")), await snapshot(b.modelDir("vpc/m2")));
  // Older generations are all kept without --keep: restore still reaches generation 1.
  expectCode(await c.run(["restore", "vpc/m1@1"]), 0, "restore generation 1");
  assert.equal(await c.read("models/vpc/m1/a.txt"), "a one\n");
});

Deno.test("gc --grace 0s waits for a push holding its model lock, so the push's fresh blobs survive", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: these tests name single blobs
  const b = await sb.repo("b");
  await b.noPacks(); // a blob per file: these tests name single blobs
  await a.write("models/vpc/m1/a.txt", "a\n");
  expectCode(await a.run(["push"]), 0, "push m1");
  const m2 = await writeModelFiles(b, "vpc/m2", { count: 16, size: 200, seed: 9 });
  const m2Blobs = [...m2.values()].map((bytes) => sha256(bytes));
  // The push holds its lock 3 s before it reads its head.
  const slow = slowStore(sb, { head: 3_000 });
  const push = b.spawn(["push", "--jobs", "1", ...slow.args], { env: slow.env });
  await waitFor("the push holding its lock", async () => {
    if (push.exited) throw new Error(`push ended early\n${describe(await push.done)}`);
    return (await sb.datastore.lock("vpc/m2"))?.pid === push.pid;
  });
  const stored = await sb.datastore.blobs();
  assert.ok(m2Blobs.every((h) => stored.includes(h)), "every blob was stored before the lock");
  const gc = a.spawn(["gc", "--grace", "0s", "--json"]);
  expectCode(await push.done, 0, "push");
  const res = expectCode(await gc.done, 0, "gc");
  assert.match(res.stderr, /Waiting for the lock on vpc\/m2/, "gc drained the model lock");
  assert.equal((expectJson(res, "modelsync.gc/1").removed as { blobs: number }).blobs, 0);
  const left = await sb.datastore.blobs();
  for (const h of m2Blobs) assert.ok(left.includes(h), `the push's blob ${h} survived`);
  assert.deepEqual(await verify(a, [], 0), []);
});

Deno.test("gc --grace 0s while a push uploads before its lock: the push stores again what gc removed before it commits", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  await b.noPacks(); // a blob per file: gc removes some of them, not one pack
  await a.write("models/vpc/m1/a.txt", "a\n");
  expectCode(await a.run(["push"]), 0, "push m1");
  const m2 = await writeModelFiles(b, "vpc/m2", { count: 20, size: 200, seed: 13 });
  // A file whose blob the datastore already has, unreferenced and two days
  // old (left by a deleted model): the push finds it and does not upload it.
  await b.write("models/vpc/m2/found.txt", "stored long ago\n");
  const found = await plantBlob(sb, "stored long ago\n", 2 * DAY);
  const m2Blobs = [...m2.values()].map((bytes) => sha256(bytes));
  // 20 uploads of 400 ms each, before the push takes its lock.
  const slow = slowStore(sb, { putBlob: 400 });
  const push = b.spawn(["push", "--json", "--jobs", "1", ...slow.args], { env: slow.env });
  await waitFor("the push's first blobs stored", async () => {
    if (push.exited) throw new Error(`push ended early\n${describe(await push.done)}`);
    const blobs = await sb.datastore.blobs();
    return m2Blobs.filter((h) => blobs.includes(h)).length >= 2;
  });
  assert.equal(await sb.datastore.lock("vpc/m2"), null, "no lock held while uploading");

  // gc runs to its end meanwhile: the push holds no lock, so nothing waits.
  const gc = expectCode(await a.run(["gc", "--grace", "0s", "--json"]), 0, "gc");
  assert.equal(push.exited, false, `gc ended while the push still uploads\n${describe(gc)}`);
  const removed = (expectJson(gc, "modelsync.gc/1").blobs as { hash: string }[]).map((x) => x.hash);
  const ofPush = removed.filter((h) => m2Blobs.includes(h));
  assert.ok(ofPush.length >= 2, `gc removed blobs the push had stored: ${removed}`);
  assert.ok(removed.includes(found), "gc removed the old blob the push had found");

  const res = expectCode(await push.done, 0, "push");
  assert.match(res.stderr, /A gc removed blobs while vpc\/m2 was pushed/, describe(res));
  const row = reportByModel(expectJson(res, "modelsync.push/1")).get("vpc/m2");
  assert.equal(row?.status, "pushed", describe(res));
  // Each removed blob was sent again under the lock, the found one included.
  assert.equal(row?.uploaded, m2Blobs.length + ofPush.length + 1, describe(res));
  assert.deepEqual(await sb.datastore.integrityProblems(), [], "the commit names stored blobs");
  assert.deepEqual(await verify(a, [], 0), []);
  const c = await sb.repo("c");
  expectCode(await c.run(["pull"]), 0, "a fresh pull");
  assert.deepEqual(await snapshot(c.modelDir("vpc/m2")), await snapshot(b.modelDir("vpc/m2")));
});

Deno.test("gc --grace 0s removes a pack a push wrote before its lock: the push stores that pack again before it commits", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  await a.write("models/vpc/m1/a.txt", "a\n");
  expectCode(await a.run(["push"]), 0, "push m1");
  // 20 small files go into one pack; 6 large ones are blobs of their own,
  // uploaded one after the other beside it, 600 ms each.
  const small = await writeModelFiles(b, "vpc/m2", { count: 20, size: 200, seed: 17 });
  const large = await writeModelFiles(b, "vpc/m2", {
    count: 6,
    size: 600 * 1024,
    seed: 18,
    prefix: "large",
  });
  const own = new Set([...small.values(), ...large.values()].map((bytes) => sha256(bytes)));
  const before = new Set(await sb.datastore.blobs());
  const slow = slowStore(sb, { putBlob: 600 });
  const push = b.spawn(["push", "--json", "--jobs", "1", ...slow.args], { env: slow.env });
  let pack = "";
  await waitFor("the push's pack stored", async () => {
    if (push.exited) throw new Error(`push ended early\n${describe(await push.done)}`);
    pack = (await sb.datastore.blobs()).find((h) => !before.has(h) && !own.has(h)) ?? "";
    return pack !== "";
  });
  const gc = expectCode(await a.run(["gc", "--grace", "0s", "--json"]), 0, "gc");
  assert.equal(push.exited, false, `gc ended while the push still uploads\n${describe(gc)}`);
  const removed = (expectJson(gc, "modelsync.gc/1").blobs as { hash: string }[]).map((x) => x.hash);
  assert.ok(removed.includes(pack), `gc removed the push's pack: ${removed}`);

  const res = expectCode(await push.done, 0, "push");
  assert.match(res.stderr, /A gc removed blobs while vpc\/m2 was pushed/, describe(res));
  const head = (await sb.datastore.current("vpc/m2"))!;
  const packs = new Set(head.files.flatMap((f) => f.pack === undefined ? [] : [f.pack.blob]));
  assert.equal(packs.size, 1, JSON.stringify(head.files));
  // The same files in the same order: the same pack, stored again under the lock.
  assert.deepEqual([...packs], [pack]);
  assert.ok((await sb.datastore.blobs()).includes(pack), "the pack is stored again");
  const row = reportByModel(expectJson(res, "modelsync.push/1")).get("vpc/m2");
  assert.ok((row?.uploaded ?? 0) >= 26 + 20, `the 20 packed files sent twice\n${describe(res)}`);
  assert.deepEqual(await sb.datastore.integrityProblems(), [], "the commit names stored blobs");
  assert.deepEqual(await verify(a, ["--read-data"], 0), []);
  const c = await sb.repo("c");
  expectCode(await c.run(["pull"]), 0, "a fresh pull");
  assert.deepEqual(await snapshot(c.modelDir("vpc/m2")), await snapshot(b.modelDir("vpc/m2")));
});

Deno.test("gc --keep 1 removes older generations and their blobs once the grace period is over; log says so and restore of them exits 3", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: these tests name single blobs
  for (const v of [1, 2, 3]) {
    await a.write("models/vpc/m1/a.txt", `a ${v}\n`);
    await a.write("models/vpc/m1/same.txt", "same in every generation\n");
    expectCode(await a.run(["push"]), 0, `push ${v}`);
  }
  // Just committed: every older generation's successor is within the 24h grace period.
  const graced = expectJson(
    expectCode(await a.run(["gc", "--keep", "1", "--json"]), 0),
    "modelsync.gc/1",
  );
  assert.deepEqual(graced.removed, { generations: 0, orphans: 0, blobs: 0, bytes: 0 });

  const res = expectCode(await a.run(["gc", "--keep", "1", "--grace", "0s", "--json"]), 0, "gc");
  const doc = expectJson(res, "modelsync.gc/1");
  assert.deepEqual(
    (doc.records as { generation: number; reason: string }[]).map((r) => [r.generation, r.reason]),
    [[1, "policy"], [2, "policy"]],
  );
  assert.deepEqual(doc.removed, { generations: 2, orphans: 0, blobs: 2, bytes: 8 });
  assert.equal((doc.kept as { generations: number }).generations, 1);
  const blobs = new Set(await sb.datastore.blobs());
  assert.ok(!blobs.has(sha256("a 1\n")) && !blobs.has(sha256("a 2\n")));
  assert.ok(blobs.has(sha256("a 3\n")) && blobs.has(sha256("same in every generation\n")));

  const log = expectCode(await a.run(["log", "vpc/m1"]), 0, "log");
  const lines = log.stdout.trimEnd().split("\n");
  assert.match(lines[1], /^3\s.*changes unknown \(parent removed\)$/);
  assert.equal(lines[lines.length - 1], "older generations removed by gc");
  assert.equal(lines.length, 3);
  const json = expectJson(
    expectCode(await a.run(["log", "vpc/m1", "--json"]), 0),
    "modelsync.log/1",
  );
  assert.equal(json.end, "pruned");
  assert.match(
    expectOneLineError(await a.run(["restore", "vpc/m1@1"]), 3),
    /generation 1 of vpc\/m1 was removed by "modelsync gc" \(the oldest kept is 3\)/i,
  );
  assert.deepEqual(await verify(a, [], 0), [], "a history cut by gc is not a broken link");
  const c = await sb.repo("c");
  await c.noPacks(); // a blob per file: these tests name single blobs
  expectCode(await c.run(["pull"]), 0, "a fresh pull");
  assert.equal(await c.read("models/vpc/m1/a.txt"), "a 3\n");
  // History goes on above the cut.
  await a.write("models/vpc/m1/a.txt", "a 4\n");
  expectCode(await a.run(["push"]), 0, "push 4");
  const after = expectJson(
    expectCode(await a.run(["log", "vpc/m1", "--json"]), 0),
    "modelsync.log/1",
  );
  assert.deepEqual((after.generations as { generation: number }[]).map((g) => g.generation), [
    4,
    3,
  ]);
  assert.equal(after.end, "pruned");
});

Deno.test("gc --keep-within keeps the generations committed within DUR, the grace rule keeps the one a pull may still read, and they conflict with --keep", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: these tests name single blobs
  for (const v of [1, 2, 3]) {
    await a.write("models/vpc/m1/a.txt", `a ${v}\n`);
    expectCode(await a.run(["push"]), 0, `push ${v}`);
  }
  // Backdate the commits: generation 1 five days ago, 2 three days ago, 3 (the head) two.
  const ages = new Map([[1, 5 * DAY], [2, 3 * DAY], [3, 2 * DAY]]);
  for (const [g, ms] of ages) {
    const dir = await historyDir(sb, "vpc/m1", g);
    const m = JSON.parse((await readRecordDir(dir))!);
    m.committedAt = new Date(Date.now() - ms).toISOString();
    await writeRecordDir(dir, JSON.stringify(m));
    await age(dir, ms);
    if (g === 3) {
      await sb.datastore.setHead("vpc/m1", m);
      await age(sb.datastore.headDir("vpc/m1"), ms);
    }
  }
  for (const h of await sb.datastore.blobs()) await age(sb.datastore.blobPath(h), 5 * DAY);
  assert.deepEqual(await verify(a, [], 0), []);
  const planned = async (args: string[]) => {
    const doc = expectJson(
      expectCode(await a.run(["gc", "--dry-run", "--json", ...args]), 0, args.join(" ")),
      "modelsync.gc/1",
    );
    return (doc.records as { generation: number }[]).map((r) => r.generation);
  };
  assert.deepEqual(await planned(["--keep-within", "4d"]), [1], "2 is within 4 days");
  assert.deepEqual(await planned(["--keep-within", "60h"]), [1, 2]);
  assert.deepEqual(
    await planned(["--keep-within", "60h", "--grace", "60h"]),
    [1],
    "3 replaced 2 within 60h",
  );
  assert.deepEqual(await planned(["--keep", "2"]), [1]);
  assert.deepEqual(await planned([]), [], "no policy: every generation is kept");
  assert.match(
    expectOneLineError(await a.run(["gc", "--keep", "1", "--keep-within", "1d"]), 2),
    /cannot be used with/,
  );
  assert.match(expectOneLineError(await a.run(["gc", "--grace", "soon"]), 2), /--grace/);
  assert.match(expectOneLineError(await a.run(["gc", "--keep", "0"]), 2), /--keep/);

  expectCode(await a.run(["gc", "--keep-within", "4d"]), 0, "gc --keep-within 4d");
  const log = expectJson(
    expectCode(await a.run(["log", "vpc/m1", "--json"]), 0),
    "modelsync.log/1",
  );
  assert.deepEqual((log.generations as { generation: number }[]).map((g) => g.generation), [3, 2]);
  assert.equal(log.end, "pruned");
  assert.equal((await sb.datastore.blobs()).includes(sha256("a 1\n")), false);
  assert.deepEqual(await verify(a, ["--read-data"], 0), []);
});
