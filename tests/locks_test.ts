/**
 * End-to-end locks: a second writer waits and times out naming the holder,
 * a killed writer's lock is taken over as stale, `lock status` shows live
 * locks, and `lock release` needs --force and reports free locks.
 */
import assert from "node:assert/strict";
import {
  type CliProcess,
  describe,
  expectCode,
  expectJson,
  expectOneLineError,
  HOST,
  type Repo,
  reportByModel,
  Sandbox,
  sleep,
  slowStore,
  waitFor,
  writeModelFiles,
} from "./_helpers.ts";

interface LockEntry {
  key: string;
  holder: string;
  host: string;
  pid: number;
  operation: string;
  acquiredAt: string;
  renewedAt: string;
  ageMs: number;
  ttlLeftMs: number;
  state: string;
  staleReason?: string;
  nonce: string;
}

async function lockStatus(repo: Repo): Promise<LockEntry[]> {
  const res = expectCode(await repo.run(["lock", "status", "--json"]), 0, "lock status");
  return expectJson(res, "modelsync.locks/1").locks as LockEntry[];
}

/**
 * Starts a push of `model` (`files` new files) that holds the model's lock
 * for `holdMs` before it reads the head (the slow-store decorator), and
 * waits until it holds the lock.
 */
async function startSlowPush(
  sb: Sandbox,
  repo: Repo,
  model: string,
  opts: { files: number; holdMs: number },
): Promise<CliProcess> {
  await writeModelFiles(repo, model, { count: opts.files, size: 2048, seed: 3 });
  const slow = slowStore(sb, { head: opts.holdMs });
  const proc = repo.spawn(["push", "--jobs", "1", ...slow.args, model], { env: slow.env });
  await waitFor(`${model}'s lock held by pid ${proc.pid}`, async () => {
    if (proc.exited) throw new Error(`slow push ended early\n${describe(await proc.done)}`);
    return (await sb.datastore.lock(model))?.pid === proc.pid;
  });
  return proc;
}

Deno.test("a held model lock makes a second writer wait, then exit 75 naming the holder", async () => {
  await using sb = await Sandbox.create();
  const r1 = await sb.repo("r1", { MODELSYNC_HOLDER: "alice" });
  const r2 = await sb.repo("r2", { MODELSYNC_HOLDER: "bob" });
  await r1.write("models/vpc/m1/first.txt", "generation one\n");
  expectCode(await r1.run(["push"]), 0, "first push");
  expectCode(await r2.run(["pull"]), 0, "first pull");
  await r2.write("models/vpc/m1/bob.txt", "bob's change\n");

  const p1 = await startSlowPush(sb, r1, "vpc/m1", { files: 10, holdMs: 6_000 });

  // A lock-free read does not wait for the writer.
  const noLock = expectCode(
    await r2.run(["pull", "--no-lock", "--json", "vpc/m1"]),
    0,
    "--no-lock",
  );
  assert.equal(
    reportByModel(expectJson(noLock, "modelsync.pull/1")).get("vpc/m1")?.status,
    "unchanged",
    describe(noLock),
  );
  assert.doesNotMatch(noLock.stderr, /Waiting for the lock/, describe(noLock));

  // lock status shows the live lock and takes none itself.
  const locks = await lockStatus(r2);
  assert.equal(locks.length, 1, JSON.stringify(locks));
  const l = locks[0];
  assert.equal(l.key, "vpc/m1");
  assert.equal(l.holder, "alice");
  assert.equal(l.host, HOST);
  assert.equal(l.pid, p1.pid);
  assert.equal(l.operation, "push");
  assert.equal(l.state, "live");
  assert.ok(l.ttlLeftMs > 0, `ttlLeftMs ${l.ttlLeftMs}`);
  assert.ok(l.ageMs >= 0);
  assert.ok(!Number.isNaN(Date.parse(l.acquiredAt)) && !Number.isNaN(Date.parse(l.renewedAt)));
  assert.equal(typeof l.nonce, "string");
  const text = expectCode(await r2.run(["lock", "status"]), 0, "lock status (text)");
  assert.match(text.stdout, /vpc\/m1/, describe(text));
  assert.match(text.stdout, /alice/, describe(text));

  const p2 = await r2.run(["push", "--json", "--lock-timeout", "1s", "vpc/m1"]);
  assert.equal(p1.exited, false, "the slow push must still hold the lock");
  expectCode(p2, 75, "second writer");
  const holder = `alice@${HOST} pid ${p1.pid}`;
  assert.ok(
    p2.stderr.includes(`Waiting for the lock on vpc/m1: held by ${holder} (push, since `),
    describe(p2),
  );
  const errors = p2.stderr.split("\n").filter((x) => x.startsWith("modelsync: error: "));
  assert.equal(errors.length, 1, describe(p2));
  assert.match(errors[0], /Timed out after/);
  assert.ok(errors[0].includes(holder), describe(p2));
  const report = reportByModel(expectJson(p2, "modelsync.push/1"));
  assert.equal(report.get("vpc/m1")?.status, "lock-timeout", describe(p2));
  assert.equal(await r2.read("models/vpc/m1/bob.txt"), "bob's change\n", "local change kept");

  expectCode(await p1.done, 0, "slow push");
  assert.deepEqual(await lockStatus(r2), [], "no lock after the push ends");
  assert.equal(await sb.datastore.lock("vpc/m1"), null);

  // Once the holder is done, the second writer gets through (rebasing onto its commit).
  const retry = expectCode(await r2.run(["push", "--json", "--lock-timeout", "1s"]), 0, "retry");
  const rr = reportByModel(expectJson(retry, "modelsync.push/1")).get("vpc/m1");
  assert.equal(rr?.status, "pushed", describe(retry));
  assert.equal(rr?.generation, 3);
  assert.equal((await sb.datastore.current("vpc/m1"))?.files.length, 12);
});

Deno.test("a push killed mid-way leaves its lock; the rerun takes it over as stale and completes", async () => {
  await using sb = await Sandbox.create();
  const r1 = await sb.repo("r1", { MODELSYNC_HOLDER: "ci" });
  const p1 = await startSlowPush(sb, r1, "vpc/m1", { files: 10, holdMs: 4_000 });
  await p1.killAndWait();

  const left = await sb.datastore.lock("vpc/m1");
  assert.equal(left?.pid, p1.pid, "the killed push's lock record is still there");
  const locks = await lockStatus(r1);
  assert.equal(locks.length, 1);
  assert.equal(locks[0].state, "stale", JSON.stringify(locks));
  assert.equal(typeof locks[0].staleReason, "string");

  const rerun = expectCode(await r1.run(["push", "--json"]), 0, "rerun");
  assert.ok(
    rerun.stderr.includes(`Took over the stale lock on vpc/m1 from ci@${HOST} pid ${p1.pid}`),
    describe(rerun),
  );
  assert.match(rerun.stderr, /modelsync: warning: .*Took over the stale lock/, describe(rerun));
  const r = reportByModel(expectJson(rerun, "modelsync.push/1")).get("vpc/m1");
  assert.equal(r?.status, "pushed");
  assert.equal(r?.generation, 1);
  assert.equal((await sb.datastore.current("vpc/m1"))?.files.length, 10);
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
  assert.deepEqual(await lockStatus(r1), [], "no lock left after the rerun");
});

Deno.test("lock release: needs --force, releases a dead holder's lock, exits 3 on a free lock", async () => {
  await using sb = await Sandbox.create();
  const r1 = await sb.repo("r1", { MODELSYNC_HOLDER: "ci" });
  const p1 = await startSlowPush(sb, r1, "vpc/m1", { files: 10, holdMs: 4_000 });
  await p1.killAndWait();
  assert.ok(await sb.datastore.lock("vpc/m1"), "lock left behind");

  const noForce = await r1.run(["lock", "release", "vpc/m1"]);
  assert.match(expectOneLineError(noForce, 2, "release without --force"), /--force/);
  assert.equal((await sb.datastore.lock("vpc/m1"))?.pid, p1.pid, "still held");

  const rel = expectCode(
    await r1.run(["lock", "release", "--force", "--json", "vpc/m1"]),
    0,
    "release --force",
  );
  const doc = expectJson(rel, "modelsync.lock-release/1");
  assert.deepEqual(doc.released, ["vpc/m1"], describe(rel));
  assert.deepEqual(doc.refused, []);
  assert.deepEqual(doc.free, []);
  assert.equal(await sb.datastore.lock("vpc/m1"), null, "lock record removed");
  assert.deepEqual(await lockStatus(r1), []);

  const again = await r1.run(["lock", "release", "--force", "vpc/m1"]);
  assert.match(expectOneLineError(again, 3, "release of a free lock"), /no lock held on vpc\/m1/i);
  const global = await r1.run(["lock", "release", "--force", "--global"]);
  assert.match(
    expectOneLineError(global, 3, "release of a free global lock"),
    /no lock held on global/i,
  );

  // The push can now run without a takeover.
  const push = expectCode(await r1.run(["push"]), 0, "push after release");
  assert.doesNotMatch(push.stderr, /Took over the stale lock/, describe(push));
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
});

Deno.test("a lease is renewed while the work runs: a short ttl does not make it stale", async () => {
  await using sb = await Sandbox.create();
  const r1 = await sb.repo("r1", { MODELSYNC_HOLDER: "renewer", MODELSYNC_LOCK_TTL: "1s" });
  const r2 = await sb.repo("r2", { MODELSYNC_HOLDER: "waiter" });
  await r2.write("models/vpc/m1/w.txt", "waiter's change\n");
  const p1 = await startSlowPush(sb, r1, "vpc/m1", { files: 10, holdMs: 8_000 });
  const first = await sb.datastore.lock("vpc/m1");
  assert.equal(first?.ttlMs, 1000, JSON.stringify(first));
  await waitFor("the lease to be renewed", async () => {
    const now = await sb.datastore.lock("vpc/m1");
    return now !== null && now.nonce === first?.nonce && now.renewedAt !== first?.renewedAt;
  }, { timeoutMs: 5_000 });
  await sleep(1_500);
  const locks = await lockStatus(r2);
  assert.equal(locks.length, 1);
  assert.equal(locks[0].state, "live", JSON.stringify(locks));
  assert.ok(locks[0].ttlLeftMs > 0, `renewed, so not expired: ${JSON.stringify(locks)}`);
  assert.ok(Date.parse(locks[0].renewedAt) > Date.parse(locks[0].acquiredAt));

  const p2 = await r2.run(["push", "--lock-timeout", "1s"]);
  assert.equal(p1.exited, false, "the slow push must still hold the lock");
  expectCode(p2, 75, "writer behind a renewed lease");
  assert.doesNotMatch(p2.stderr, /Took over/, describe(p2));
  expectCode(await p1.done, 0, "slow push with a 1s lease");
  assert.equal((await sb.datastore.current("vpc/m1"))?.files.length, 10);
});

Deno.test("two writers racing to take over the same stale lock: one takes it over, both complete", async () => {
  await using sb = await Sandbox.create();
  const r1 = await sb.repo("r1", { MODELSYNC_HOLDER: "dead" });
  const r2 = await sb.repo("r2", { MODELSYNC_HOLDER: "two" });
  const r3 = await sb.repo("r3", { MODELSYNC_HOLDER: "three" });
  const p1 = await startSlowPush(sb, r1, "vpc/m1", { files: 6, holdMs: 4_000 });
  await p1.killAndWait();
  assert.equal((await sb.datastore.lock("vpc/m1"))?.pid, p1.pid);
  await r2.write("models/vpc/m1/two.txt", "from two\n");
  await r3.write("models/vpc/m1/three.txt", "from three\n");

  const [a, b] = await Promise.all([r2.spawn(["push"]).done, r3.spawn(["push"]).done]);
  expectCode(a, 0, "writer two");
  expectCode(b, 0, "writer three");
  const takeover = `Took over the stale lock on vpc/m1 from dead@${HOST} pid ${p1.pid}`;
  const count = [a, b].filter((r) => r.stderr.includes(takeover)).length;
  assert.equal(count, 1, `exactly one takeover\n${describe(a)}\n${describe(b)}`);
  const m = await sb.datastore.current("vpc/m1");
  assert.equal(m?.generation, 2);
  assert.deepEqual(m?.files.map((f) => f.path), ["three.txt", "two.txt"]);
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
  assert.deepEqual(await lockStatus(r2), []);
});

Deno.test("a lease lost to a force release stops the push before it commits (exit 75)", async () => {
  await using sb = await Sandbox.create();
  const r1 = await sb.repo("r1", { MODELSYNC_HOLDER: "victim", MODELSYNC_LOCK_TTL: "1s" });
  const op = await sb.repo("op", { MODELSYNC_HOLDER: "operator" });
  const p1 = await startSlowPush(sb, r1, "vpc/m1", { files: 8, holdMs: 4_000 });
  const rel = expectCode(
    await op.run(["lock", "release", "--force", "--json", "vpc/m1"]),
    0,
    "force release of a live lock",
  );
  assert.deepEqual(expectJson(rel, "modelsync.lock-release/1").released, ["vpc/m1"]);
  const res = await p1.done;
  expectCode(res, 75, "the push whose lease was lost");
  assert.match(res.stderr, /^modelsync: error: .*(lease|lock)/im, describe(res));
  assert.equal(await sb.datastore.current("vpc/m1"), null, "nothing committed after the loss");
  assert.equal(await sb.datastore.lock("vpc/m1"), null, "no lock left behind");
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
  const rerun = expectCode(await r1.run(["push"]), 0, "rerun");
  assert.doesNotMatch(rerun.stderr, /Took over the stale lock/, describe(rerun));
  assert.equal((await sb.datastore.current("vpc/m1"))?.files.length, 8);
});
