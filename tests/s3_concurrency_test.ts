/**
 * End-to-end locking on an S3 datastore: flushes of different models do not
 * wait for each other on the scoped path, the small one waits on the global
 * path (`--disable-cap scopedSync`), and a writer that cannot get a held lock
 * exits 75 naming the holder.
 *
 * Order, not time: the big flush holds its lock through the slow-store
 * decorator (`head`: a wait under its lock before it reads its head), given
 * only to its own process, for several seconds so that a loaded machine
 * still starts the other process while it runs.
 */
import assert from "node:assert/strict";
import {
  type CliProcess,
  describe,
  expectCode,
  expectJson,
  HOST,
  type Repo,
  reportByModel,
  type RunResult,
  slowStore,
  waitFor,
  writeModelFiles,
} from "./_helpers.ts";
import { S3Sandbox, s3TestOptions } from "./_s3.ts";

/** Starts a flush that holds its lock for `holdMs`, and waits until it holds `lockKey`. */
async function startSlow(
  s3: S3Sandbox,
  repo: Repo,
  lockKey: string,
  opts: { model: string; files: number; holdMs: number; args?: string[] },
): Promise<CliProcess> {
  await writeModelFiles(repo, opts.model, { count: opts.files, size: 1024, seed: 2 });
  const slow = slowStore(s3.sb, { head: opts.holdMs });
  const proc = repo.spawn(["flush", "--json", "--jobs", "1", ...slow.args, ...(opts.args ?? [])], {
    env: slow.env,
  });
  await waitFor(`the slow flush to hold ${lockKey}`, async () => {
    if (proc.exited) throw new Error(`slow flush ended early\n${describe(await proc.done)}`);
    return (await s3.store.lock(lockKey))?.pid === proc.pid;
  }, { intervalMs: 100 });
  return proc;
}

function flushRow(res: RunResult, model: string) {
  const doc = expectJson(res, "modelsync.flush/1");
  const r = reportByModel(doc).get(model);
  assert.ok(r, describe(res));
  return { doc, r };
}

Deno.test({
  name: "S3 scoped path: a small flush finishes while a slow flush of another model still runs",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-scoped");
    const bigRepo = await s3.sb.repo("big", { MODELSYNC_HOLDER: "big" });
    const smallRepo = await s3.sb.repo("small", { MODELSYNC_HOLDER: "small" });
    await smallRepo.write("models/vpc/small/one.txt", "one small file\n");

    const big = await startSlow(s3, bigRepo, "vpc/big", {
      model: "vpc/big",
      files: 32,
      holdMs: 8_000,
    });
    const small = await smallRepo.run(["flush", "--json"]);
    assert.equal(big.exited, false, "the slow flush still runs when the small one exits");
    expectCode(small, 0, "small flush");
    assert.doesNotMatch(small.stderr, /Waiting for the/, describe(small));
    const s = flushRow(small, "vpc/small");
    assert.equal(s.doc.lockPath, "scoped");
    assert.equal(s.r.status, "pushed");
    assert.equal(s.r.generation, 1);

    const b = flushRow(expectCode(await big.done, 0, "big flush"), "vpc/big");
    assert.equal(b.r.status, "pushed");
    assert.equal(b.r.files, 32);
    assert.deepEqual(await s3.store.integrityProblems(), []);
  },
});

Deno.test({
  name: "S3 global path (--disable-cap scopedSync): the small flush waits for the slow one",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-global");
    const bigRepo = await s3.sb.repo("big", { MODELSYNC_HOLDER: "big" });
    const smallRepo = await s3.sb.repo("small", { MODELSYNC_HOLDER: "small" });
    await smallRepo.write("models/vpc/small/one.txt", "one small file\n");

    const args = ["--disable-cap", "scopedSync"];
    const big = await startSlow(s3, bigRepo, "global", {
      model: "vpc/big",
      files: 16,
      holdMs: 5_000,
      args,
    });
    const small = smallRepo.spawn(["flush", "--json", ...args]);
    const [bigRes, smallRes] = await Promise.all([big.done, small.done]);
    expectCode(bigRes, 0, "big flush");
    expectCode(smallRes, 0, "small flush");
    assert.ok(
      smallRes.stderr.includes("Waiting for the global lock: held by big@"),
      describe(smallRes),
    );
    assert.ok(
      big.exitOrder < small.exitOrder,
      `the slow flush (exit #${big.exitOrder}) ends before the small one (exit #${small.exitOrder})`,
    );
    assert.equal(flushRow(smallRes, "vpc/small").doc.lockPath, "global");
    assert.equal(flushRow(smallRes, "vpc/small").r.status, "pushed");
    assert.equal(flushRow(bigRes, "vpc/big").doc.lockPath, "global");
    assert.deepEqual(await s3.store.integrityProblems(), []);
  },
});

Deno.test({
  name: "S3: a held model lock makes a second writer exit 75 naming the holder; local files kept",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-locktimeout");
    const r1 = await s3.sb.repo("r1", { MODELSYNC_HOLDER: "alice" });
    const r2 = await s3.sb.repo("r2", { MODELSYNC_HOLDER: "bob" });
    await r1.write("models/vpc/m1/first.txt", "generation one\n");
    expectCode(await r1.run(["push"]), 0, "first push");
    expectCode(await r2.run(["pull"]), 0, "first pull");
    await r2.write("models/vpc/m1/bob.txt", "bob's change\n");

    const slow = await startSlow(s3, r1, "vpc/m1", { model: "vpc/m1", files: 12, holdMs: 7_000 });
    const res = await r2.run(["push", "--json", "--lock-timeout", "1s", "vpc/m1"]);
    assert.equal(slow.exited, false, "the slow flush still holds the lock");
    expectCode(res, 75, "second writer");
    const holder = `alice@${HOST} pid ${slow.pid}`;
    assert.ok(
      res.stderr.includes(`Waiting for the lock on vpc/m1: held by ${holder} (flush, since `),
      describe(res),
    );
    const errors = res.stderr.split("\n").filter((l) => l.startsWith("modelsync: error: "));
    assert.equal(errors.length, 1, describe(res));
    assert.match(errors[0], /Timed out after 1s/);
    assert.ok(errors[0].includes(holder), describe(res));
    assert.match(errors[0], /modelsync lock release --force vpc\/m1/);
    assert.equal(
      reportByModel(expectJson(res, "modelsync.push/1")).get("vpc/m1")?.status,
      "lock-timeout",
    );
    assert.equal(await r2.read("models/vpc/m1/bob.txt"), "bob's change\n", "local change kept");

    expectCode(await slow.done, 0, "slow flush");
    assert.equal(await s3.store.lock("vpc/m1"), null, "no lock after the flush ends");
    const retry = expectCode(await r2.run(["push", "--json"]), 0, "retry");
    const row = reportByModel(expectJson(retry, "modelsync.push/1")).get("vpc/m1");
    assert.equal(row?.status, "pushed", describe(retry));
    assert.equal(row?.generation, 3);
    assert.equal((await s3.store.current("vpc/m1"))?.files.length, 14);
  },
});
