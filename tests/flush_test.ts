/**
 * End-to-end `flush`, the CI command: it keeps going past a failed model,
 * exits with a meaningful code, and never leaves a lock behind (not on
 * `--timeout`, not on SIGTERM or SIGINT).
 */
import assert from "node:assert/strict";
import {
  describe,
  expectCode,
  expectJson,
  type Repo,
  reportByModel,
  Sandbox,
  sha256,
  slowStore,
  waitFor,
  writeModelFiles,
  writeRecordDir,
} from "./_helpers.ts";

async function lockCount(repo: Repo): Promise<number> {
  const res = expectCode(await repo.run(["lock", "status", "--json"]), 0, "lock status");
  return (expectJson(res, "modelsync.locks/1").locks as unknown[]).length;
}

Deno.test("flush keeps going past a conflicting model (exit 4) and a failing one (exit 5)", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  await a.write("models/vpc/shared/s.txt", "base\n");
  expectCode(await a.run(["push"]), 0);
  expectCode(await b.run(["pull"]), 0);
  await a.write("models/vpc/shared/s.txt", "a's version\n");
  expectCode(await a.run(["push"]), 0);

  // b: one model in conflict, one clean.
  await b.write("models/vpc/shared/s.txt", "b's version\n");
  await b.write("models/vpc/clean/c.txt", "clean\n");
  const res = await b.run(["flush", "--json"]);
  expectCode(res, 4, "flush with a conflict");
  const doc = expectJson(res, "modelsync.flush/1");
  const r = reportByModel(doc);
  assert.equal(r.get("vpc/clean")?.status, "pushed", describe(res));
  assert.equal(r.get("vpc/shared")?.status, "conflict", describe(res));
  assert.deepEqual(r.get("vpc/shared")?.conflicts, ["s.txt"]);
  const summary = doc.summary as Record<string, number>;
  assert.equal(summary.pushed, 1);
  assert.equal(summary.conflict, 1);
  assert.equal(await b.read("models/vpc/shared/s.txt"), "b's version\n");

  // b: one model whose remote manifest is corrupt, one clean: partial failure.
  await writeRecordDir(
    sb.datastore.headDir("vpc/broken"),
    JSON.stringify({
      format: 2,
      model: "vpc/broken",
      generation: 1,
      commit: "0123456789abcdef",
      parent: null,
      files: [{ path: "/etc/passwd", sha256: sha256("x"), size: 1, executable: false }],
      committedBy: { holder: "m", host: "h", pid: 1 },
      committedAt: new Date().toISOString(),
    }),
  );
  await b.write("models/vpc/broken/b.txt", "local\n");
  await b.write("models/vpc/clean2/c.txt", "clean too\n");
  const partial = await b.run(["flush", "--json"]);
  expectCode(partial, 5, "flush with a failing model");
  const pr = reportByModel(expectJson(partial, "modelsync.flush/1"));
  assert.equal(pr.get("vpc/broken")?.status, "failed", describe(partial));
  assert.match(String(pr.get("vpc/broken")?.error), /corrupt/);
  assert.equal(pr.get("vpc/clean2")?.status, "pushed", describe(partial));
  assert.equal(pr.get("vpc/shared")?.status, "conflict", describe(partial));
  assert.equal((await sb.datastore.current("vpc/clean2"))?.generation, 1);
  assert.equal(await b.read("models/vpc/broken/b.txt"), "local\n");
  assert.equal(await lockCount(b), 0, "no lock left behind");
});

Deno.test("flush with nothing pending exits 0", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const empty = expectCode(await a.run(["flush", "--json"]), 0, "flush of an empty repo");
  const doc = expectJson(empty, "modelsync.flush/1");
  assert.deepEqual(doc.models, []);
  await a.write("models/vpc/m1/f.txt", "f\n");
  expectCode(await a.run(["flush"]), 0);
  const again = expectJson(expectCode(await a.run(["flush", "--json"]), 0), "modelsync.flush/1");
  for (const m of reportByModel(again).values()) assert.equal(m.status, "unchanged");
  const text = expectCode(await a.run(["flush"]), 0);
  assert.doesNotMatch(text.stdout, /^pushed/m, describe(text));
});

Deno.test("flush past --timeout stops, exits 130 and leaves no lock; a rerun completes", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: ten slow uploads
  const files = await writeModelFiles(a, "vpc/m1", { count: 10, size: 512, seed: 9 });
  const slow = slowStore(sb, { putBlob: 400 });
  const res = await a.run(["flush", "--jobs", "1", "--timeout", "1s", ...slow.args], {
    env: slow.env,
  });
  expectCode(res, 130, "flush past its deadline");
  assert.match(res.stderr, /^modelsync: error: /m, describe(res));
  assert.equal(await lockCount(a), 0, "no lock left behind");
  assert.equal(await sb.datastore.current("vpc/m1"), null, "nothing committed");
  assert.deepEqual(await sb.datastore.integrityProblems(), []);

  const rerun = expectCode(await a.run(["flush", "--json"]), 0, "rerun");
  assert.equal(
    reportByModel(expectJson(rerun, "modelsync.flush/1")).get("vpc/m1")?.status,
    "pushed",
  );
  assert.equal((await sb.datastore.current("vpc/m1"))?.files.length, files.size);
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`flush interrupted by ${signal} exits 130 and releases its lock`, async () => {
    await using sb = await Sandbox.create();
    const a = await sb.repo("a");
    await writeModelFiles(a, "vpc/m1", { count: 10, size: 512, seed: 4 });
    // Holds the lock 4 s before it reads the head.
    const slow = slowStore(sb, { head: 4_000 });
    const p = a.spawn(["flush", "--jobs", "1", ...slow.args], { env: slow.env });
    await waitFor("the flush to hold the lock", async () => {
      if (p.exited) throw new Error(`flush ended early\n${describe(await p.done)}`);
      return (await sb.datastore.lock("vpc/m1"))?.pid === p.pid;
    });
    p.kill(signal);
    const res = await p.done;
    expectCode(res, 130, `flush after ${signal}`);
    assert.equal(await sb.datastore.lock("vpc/m1"), null, "the lock was released");
    assert.equal(await sb.datastore.current("vpc/m1"), null, "nothing committed");
    assert.equal(await lockCount(a), 0);
    // The repository is usable right away (no stale repository lock to take over).
    const rerun = expectCode(await a.run(["flush"]), 0, "rerun");
    assert.doesNotMatch(rerun.stderr, /Took over/, describe(rerun));
  });
}
