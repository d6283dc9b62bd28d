/**
 * End-to-end concurrency: writers of different models do not wait for each
 * other on the scoped path but do on the global path; two writers of the
 * same model rebase when they touched different files and conflict when they
 * changed the same file, and nothing is lost.
 *
 * Order, not time: the big flush holds its lock for seconds through the
 * slow-store decorator (`head`: a wait under its lock before it reads its
 * head), given only to its own process.
 */
import assert from "node:assert/strict";
import {
  type CliProcess,
  describe,
  expectCode,
  expectJson,
  type Repo,
  reportByModel,
  type RunResult,
  Sandbox,
  sha256,
  slowStore,
  waitFor,
  writeModelFiles,
} from "./_helpers.ts";

/** Starts the slow flush of a big model and waits until it holds `lockKey`. */
async function startBigFlush(
  sb: Sandbox,
  repo: Repo,
  lockKey: string,
  extra: string[],
): Promise<CliProcess> {
  await writeModelFiles(repo, "vpc/big", { count: 40, size: 1024, seed: 2 });
  const slow = slowStore(sb, { head: 4_000 });
  const big = repo.spawn(["flush", "--json", "--jobs", "1", ...slow.args, ...extra], {
    env: slow.env,
  });
  await waitFor(`the big flush to hold ${lockKey}`, async () => {
    if (big.exited) throw new Error(`big flush ended early\n${describe(await big.done)}`);
    return (await sb.datastore.lock(lockKey))?.pid === big.pid;
  });
  return big;
}

function flushReport(res: RunResult, model: string) {
  const doc = expectJson(res, "modelsync.flush/1");
  const r = reportByModel(doc).get(model);
  assert.ok(r, describe(res));
  return { doc, r };
}

Deno.test("scoped path: a small flush finishes while a big flush of another model still runs", async () => {
  await using sb = await Sandbox.create();
  const bigRepo = await sb.repo("big", { MODELSYNC_HOLDER: "big" });
  const smallRepo = await sb.repo("small", { MODELSYNC_HOLDER: "small" });
  await smallRepo.write("models/vpc/small/one.txt", "one small file\n");

  const big = await startBigFlush(sb, bigRepo, "vpc/big", []);
  const small = await smallRepo.spawn(["flush", "--json"]).done;
  assert.equal(big.exited, false, "the big flush is still running when the small one exits");
  expectCode(small, 0, "small flush");
  assert.doesNotMatch(small.stderr, /Waiting for the lock/, describe(small));
  const s = flushReport(small, "vpc/small");
  assert.equal(s.doc.lockPath, "scoped");
  assert.equal(s.r.status, "pushed");
  assert.equal(s.r.generation, 1);

  const bigRes = expectCode(await big.done, 0, "big flush");
  const b = flushReport(bigRes, "vpc/big");
  assert.equal(b.r.status, "pushed");
  assert.equal(b.r.files, 40);
  assert.equal(b.r.bytes, 40 * 1024);
  assert.ok(small.code === 0 && big.exitOrder > 0);
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
});

Deno.test("global path (--disable-cap scopedSync): the small flush waits for the big one", async () => {
  await using sb = await Sandbox.create();
  const bigRepo = await sb.repo("big", { MODELSYNC_HOLDER: "big" });
  const smallRepo = await sb.repo("small", { MODELSYNC_HOLDER: "small" });
  await smallRepo.write("models/vpc/small/one.txt", "one small file\n");

  const big = await startBigFlush(sb, bigRepo, "global", ["--disable-cap", "scopedSync"]);
  const held = expectCode(await smallRepo.run(["lock", "status", "--json"]), 0, "lock status");
  const locks = expectJson(held, "modelsync.locks/1").locks as Record<string, unknown>[];
  assert.deepEqual(
    locks.map((l) => [l.key, l.holder, l.pid, l.operation, l.state]),
    [["global", "big", big.pid, "flush", "live"]],
    describe(held),
  );
  const small = smallRepo.spawn(["flush", "--json", "--disable-cap", "scopedSync"]);
  const [bigRes, smallRes] = await Promise.all([big.done, small.done]);
  expectCode(bigRes, 0, "big flush");
  expectCode(smallRes, 0, "small flush");
  assert.ok(smallRes.stderr.includes("Waiting for the global lock: held by"), describe(smallRes));
  assert.ok(smallRes.stderr.includes("held by big@"), describe(smallRes));
  assert.ok(
    big.exitOrder < small.exitOrder,
    `the big flush (exit #${big.exitOrder}) ends before the small one (exit #${small.exitOrder})`,
  );
  const s = flushReport(smallRes, "vpc/small");
  assert.equal(s.doc.lockPath, "global");
  assert.equal(s.r.status, "pushed");
  assert.equal(flushReport(bigRes, "vpc/big").doc.lockPath, "global");
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
});

Deno.test("global path: a push holds no lock while it uploads, so a small flush of another model does not wait for it", async () => {
  await using sb = await Sandbox.create();
  const bigRepo = await sb.repo("big", { MODELSYNC_HOLDER: "big" });
  const smallRepo = await sb.repo("small", { MODELSYNC_HOLDER: "small" });
  await bigRepo.noPacks(); // a blob per file: its uploads take a while
  await smallRepo.write("models/vpc/small/one.txt", "one small file\n");
  const files = await writeModelFiles(bigRepo, "vpc/big", { count: 16, size: 1024, seed: 5 });
  const hashes = [...files.values()].map((bytes) => sha256(bytes));
  const global = ["--disable-cap", "scopedSync"];
  // 16 uploads of 400 ms each.
  const slow = slowStore(sb, { putBlob: 400 });
  const big = bigRepo.spawn(["flush", "--json", "--jobs", "1", ...slow.args, ...global], {
    env: slow.env,
  });
  await waitFor("the big flush's first blob stored", async () => {
    if (big.exited) throw new Error(`big flush ended early\n${describe(await big.done)}`);
    const blobs = await sb.datastore.blobs();
    return hashes.some((h) => blobs.includes(h));
  });
  const held = expectCode(await smallRepo.run(["lock", "status", "--json"]), 0, "lock status");
  assert.deepEqual(expectJson(held, "modelsync.locks/1").locks, [], describe(held));
  const blobs = await sb.datastore.blobs();
  assert.ok(hashes.some((h) => !blobs.includes(h)), "the big flush was still uploading");

  const small = await smallRepo.run(["flush", "--json", ...global]);
  expectCode(small, 0, "small flush");
  assert.equal(big.exited, false, "the big flush still uploads when the small one exits");
  assert.doesNotMatch(small.stderr, /Waiting for the global lock/, describe(small));
  assert.equal(flushReport(small, "vpc/small").doc.lockPath, "global");

  const b = flushReport(expectCode(await big.done, 0, "big flush"), "vpc/big");
  assert.equal(b.doc.lockPath, "global");
  assert.equal(b.r.status, "pushed");
  assert.equal(b.r.uploaded, 16);
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
});

/** Both repos at generation 1 of vpc/m1 with a.txt and b.txt. */
async function sameBase(sb: Sandbox): Promise<{ r1: Repo; r2: Repo }> {
  const r1 = await sb.repo("r1", { MODELSYNC_HOLDER: "one" });
  const r2 = await sb.repo("r2", { MODELSYNC_HOLDER: "two" });
  await r1.write("models/vpc/m1/a.txt", "a base\n");
  await r1.write("models/vpc/m1/b.txt", "b base\n");
  await r1.write("models/vpc/m1/c.txt", "c base\n");
  expectCode(await r1.run(["push"]), 0, "base push");
  expectCode(await r2.run(["pull"]), 0, "base pull");
  return { r1, r2 };
}

Deno.test("same model, different files, pushed at once: both land, one by rebase", async () => {
  await using sb = await Sandbox.create();
  const { r1, r2 } = await sameBase(sb);
  await r1.write("models/vpc/m1/a.txt", "a changed by one\n");
  await r1.write("models/vpc/m1/new-one.txt", "added by one\n");
  await r2.write("models/vpc/m1/b.txt", "b changed by two\n");
  await Deno.remove(r2.path("models/vpc/m1/c.txt"));

  const p1 = r1.spawn(["push", "--json"]);
  const p2 = r2.spawn(["push", "--json"]);
  const [res1, res2] = await Promise.all([p1.done, p2.done]);
  expectCode(res1, 0, "push one");
  expectCode(res2, 0, "push two");
  const m1 = reportByModel(expectJson(res1, "modelsync.push/1")).get("vpc/m1")!;
  const m2 = reportByModel(expectJson(res2, "modelsync.push/1")).get("vpc/m1")!;
  assert.equal(m1.status, "pushed", describe(res1));
  assert.equal(m2.status, "pushed", describe(res2));
  assert.deepEqual([m1.generation, m2.generation].sort(), [2, 3]);
  const later = m1.generation === 3 ? m1 : m2;
  const first = m1.generation === 3 ? m2 : m1;
  assert.equal(later.rebased, true, `the later push rebased: ${JSON.stringify(later)}`);
  assert.notEqual(first.rebased, true, `the first push did not: ${JSON.stringify(first)}`);

  const current = await sb.datastore.current("vpc/m1");
  assert.equal(current?.generation, 3);
  assert.deepEqual(current?.files.map((f) => f.path), ["a.txt", "b.txt", "new-one.txt"]);
  assert.deepEqual(await sb.datastore.integrityProblems(), []);

  // Nothing lost: a fresh repo pulls the union of both pushes.
  const r3 = await sb.repo("r3");
  expectCode(await r3.run(["pull"]), 0, "fresh pull");
  assert.deepEqual(await r3.modelFiles("vpc/m1"), ["a.txt", "b.txt", "new-one.txt"]);
  assert.equal(await r3.read("models/vpc/m1/a.txt"), "a changed by one\n");
  assert.equal(await r3.read("models/vpc/m1/b.txt"), "b changed by two\n");
  assert.equal(await r3.read("models/vpc/m1/new-one.txt"), "added by one\n");
});

Deno.test("same model, same file changed differently, pushed at once: one wins, the other exits 4", async () => {
  await using sb = await Sandbox.create();
  const { r1, r2 } = await sameBase(sb);
  await r1.write("models/vpc/m1/a.txt", "a as one wants it\n");
  await r2.write("models/vpc/m1/a.txt", "a as two wants it, longer\n");

  const p1 = r1.spawn(["push"]);
  const p2 = r2.spawn(["push"]);
  const [res1, res2] = await Promise.all([p1.done, p2.done]);
  const codes = [res1.code, res2.code].sort();
  assert.deepEqual(codes, [0, 4], `${describe(res1)}\n${describe(res2)}`);
  const [winner, loser, loserRes] = res1.code === 0 ? [r1, r2, res2] : [r2, r1, res1];
  const output = loserRes.stdout + loserRes.stderr;
  assert.match(output, /a\.txt/, describe(loserRes));
  assert.match(output, /modelsync pull/, describe(loserRes));
  assert.match(loserRes.stderr, /^modelsync: error: /m, describe(loserRes));

  const winnerText = await winner.read("models/vpc/m1/a.txt");
  const loserText = loser === r1 ? "a as one wants it\n" : "a as two wants it, longer\n";
  assert.equal(await loser.read("models/vpc/m1/a.txt"), loserText, "the loser keeps its file");
  const current = await sb.datastore.current("vpc/m1");
  assert.equal(current?.generation, 2);
  // The loser still sees its change as pending and the remote as ahead.
  const st = expectJson(
    expectCode(await loser.run(["status", "--remote", "--json", "vpc/m1"]), 0),
    "modelsync.status/1",
  );
  const m = (st.models as {
    local: Record<string, string[]>;
    base: number;
    remote: { generation: number; state: string };
  }[])[0];
  assert.deepEqual(m.local.modified, ["a.txt"]);
  assert.equal(m.base, 1);
  assert.deepEqual(m.remote, { generation: 2, state: "ahead" });
  // And the JSON form of the same conflict names the file.
  const again = await loser.run(["push", "--json"]);
  expectCode(again, 4, "push again");
  const r = reportByModel(expectJson(again, "modelsync.push/1")).get("vpc/m1");
  assert.equal(r?.status, "conflict");
  assert.deepEqual(r?.conflicts, ["a.txt"]);
  assert.equal(await loser.read("models/vpc/m1/a.txt"), loserText);
  assert.notEqual(winnerText, loserText);
});

Deno.test("mixed paths: a global-path flush drains a live model lock; a scoped flush waits for the global lock", async () => {
  await using sb = await Sandbox.create();
  const bigRepo = await sb.repo("big", { MODELSYNC_HOLDER: "big" });
  const smallRepo = await sb.repo("small", { MODELSYNC_HOLDER: "small" });

  // A scoped writer holds vpc/big; a global-path writer of vpc/small must wait for it.
  await smallRepo.write("models/vpc/small/one.txt", "one\n");
  const big1 = await startBigFlush(sb, bigRepo, "vpc/big", []);
  const small1 = smallRepo.spawn(["flush", "--json", "--disable-cap", "scopedSync"]);
  const [b1, s1] = await Promise.all([big1.done, small1.done]);
  expectCode(b1, 0, "scoped big flush");
  expectCode(s1, 0, "global small flush");
  assert.ok(
    big1.exitOrder < small1.exitOrder,
    `global writer drained the model lock\n${describe(s1)}`,
  );
  assert.equal(flushReport(s1, "vpc/small").doc.lockPath, "global");

  // A global-path writer holds the global lock; a scoped writer must wait for it.
  await bigRepo.write("models/vpc/big/extra.txt", "more\n");
  await writeModelFiles(bigRepo, "vpc/big", { count: 30, size: 1024, seed: 77, prefix: "v2" });
  const slow = slowStore(sb, { head: 3_000 });
  const big2 = bigRepo.spawn(
    ["flush", "--json", "--jobs", "1", "--disable-cap", "scopedSync", ...slow.args],
    { env: slow.env },
  );
  await waitFor("the global lock held by the big flush", async () => {
    if (big2.exited) throw new Error(`big flush ended early\n${describe(await big2.done)}`);
    return (await sb.datastore.lock("global"))?.pid === big2.pid;
  });
  await smallRepo.write("models/vpc/small/two.txt", "two\n");
  const small2 = smallRepo.spawn(["flush", "--json"]);
  const [b2, s2] = await Promise.all([big2.done, small2.done]);
  expectCode(b2, 0, "global big flush");
  expectCode(s2, 0, "scoped small flush");
  assert.ok(s2.stderr.includes("Waiting for the global lock: held by"), describe(s2));
  assert.ok(big2.exitOrder < small2.exitOrder, "the scoped writer waited for the global holder");
  assert.equal(flushReport(s2, "vpc/small").doc.lockPath, "scoped");
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
});

Deno.test("two pushes in the same repository: one waits for the other, nothing is pushed twice", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("r");
  await writeModelFiles(repo, "vpc/m1", { count: 6, size: 512, seed: 8 });
  const slow = slowStore(sb, { head: 2_000 });
  const first = repo.spawn(["push", "--json", "--jobs", "1", ...slow.args], { env: slow.env });
  await waitFor("the first push to hold vpc/m1", async () => {
    if (first.exited) throw new Error(`first push ended early\n${describe(await first.done)}`);
    return (await sb.datastore.lock("vpc/m1"))?.pid === first.pid;
  });
  const second = await repo.run(["push", "--json"]);
  const firstRes = await first.done;
  expectCode(firstRes, 0, "first push");
  expectCode(second, 0, "second push");
  assert.ok(first.exitOrder > 0);
  const a = reportByModel(expectJson(firstRes, "modelsync.push/1")).get("vpc/m1");
  const b = reportByModel(expectJson(second, "modelsync.push/1")).get("vpc/m1");
  assert.equal(a?.status, "pushed");
  assert.equal(b?.status, "unchanged", `the second push found nothing left\n${describe(second)}`);
  assert.equal((await sb.datastore.manifests()).length, 1, "one commit");
});
