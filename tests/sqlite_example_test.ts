/**
 * The SQLite example provider (examples/sqlite-provider/) under the real
 * CLI, loaded with `type: module` by a path relative to the repository:
 * init, push, pull into a second repository, `caps` (scoped) and
 * `caps --probe`, and concurrent flushes of different models by several
 * processes on one database file, which do not wait for each other.
 *
 * Order, not time: the big flush holds its lock through the slow-store
 * decorator (`head`: a wait under its lock before it reads its head), given
 * only to its own process.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import {
  describe,
  expectCode,
  expectJson,
  Repo,
  reportByModel,
  ROOT,
  type RunResult,
  Sandbox,
  slowStore,
  waitFor,
  writeModelFiles,
} from "./_helpers.ts";

const SQLITE = join(ROOT, "examples/sqlite-provider/mod.ts");

/** A repository on the sandbox's SQLite datastore `store.db`, made by `modelsync init`. */
async function sqliteRepo(sb: Sandbox, name: string, env: Record<string, string> = {}) {
  const dir = await sb.dir(name);
  // Both paths relative to the repository, as a user would write them.
  const datastore = {
    type: "module",
    module: relative(dir, SQLITE),
    config: { path: "../store.db" },
  };
  await Deno.writeTextFile(
    join(dir, "modelsync.yaml"),
    `datastore: ${JSON.stringify(datastore)}\n`,
  );
  const repo = new Repo(sb, dir, env);
  const init = expectCode(await repo.run(["init"]), 0, `init ${name}`);
  assert.match(init.stdout, new RegExp(`datastore sqlite:${join(sb.root, "store.db")}`));
  return repo;
}

function flushReport(res: RunResult, model: string) {
  const doc = expectJson(res, "modelsync.flush/1");
  const r = reportByModel(doc).get(model);
  assert.ok(r, describe(res));
  return { doc, r };
}

Deno.test("SQLite example: init, push, pull elsewhere, caps is scoped, caps --probe passes", async () => {
  await using sb = await Sandbox.create();
  const a = await sqliteRepo(sb, "a");
  const files = await writeModelFiles(a, "vpc/m1", { count: 5, size: 300_000, seed: 1 });
  await a.write("models/@acme/nlp/bert/config.json", '{"layers": 12}\n');
  const push = expectCode(await a.run(["push", "--json"]), 0, "push");
  const pushed = reportByModel(expectJson(push, "modelsync.push/1"));
  assert.equal(pushed.get("vpc/m1")?.status, "pushed");
  assert.equal(pushed.get("@acme/nlp/bert")?.status, "pushed");

  const b = await sqliteRepo(sb, "b");
  const pull = expectCode(await b.run(["pull", "--json"]), 0, "pull");
  assert.equal(reportByModel(expectJson(pull, "modelsync.pull/1")).get("vpc/m1")?.status, "pulled");
  for (const [rel, bytes] of files) {
    assert.deepEqual(await b.readBytes(`models/vpc/m1/${rel}`), bytes);
  }
  assert.equal(await b.read("models/@acme/nlp/bert/config.json"), '{"layers": 12}\n');

  const caps = expectJson(await b.run(["caps", "--json"]), "modelsync.caps/1");
  assert.equal(caps.provider, "sqlite");
  assert.equal(caps.location, join(sb.root, "store.db"));
  assert.equal(caps.lockPath, "scoped");
  assert.deepEqual(caps.warnings, []);
  const c = caps.capabilities as Record<string, unknown>;
  assert.deepEqual([c.scopedSync, c.atomicCommit, c.serverTime, c.rangedReads], [
    true,
    true,
    false,
    true,
  ]);
  const probe = expectCode(await b.run(["caps", "--probe", "--json"]), 0, "caps --probe");
  const checks = expectJson(probe, "modelsync.caps/1").probe as { ok: boolean; name: string }[];
  assert.ok(checks.length >= 8 && checks.every((k) => k.ok), describe(probe));
  const human = expectCode(await b.run(["caps"]), 0, "caps");
  assert.match(human.stdout, /lock path {4}scoped/);
});

Deno.test("SQLite example: flushes of different models by several processes do not wait for each other and all land", async () => {
  await using sb = await Sandbox.create();
  const big = await sqliteRepo(sb, "big", { MODELSYNC_HOLDER: "big" });
  const others = await Promise.all(
    ["one", "two", "three"].map((n) => sqliteRepo(sb, n, { MODELSYNC_HOLDER: n })),
  );
  await writeModelFiles(big, "vpc/big", { count: 30, size: 1024, seed: 2 });
  for (const [i, r] of others.entries()) {
    await writeModelFiles(r, `vpc/small${i}`, { count: 3, size: 5000, seed: 10 + i });
  }
  const inner = { type: "module", module: SQLITE, config: { path: join(sb.root, "store.db") } };
  const decorated = slowStore(sb, { head: 5_000 }, { inner: JSON.stringify(inner) });
  const slow = big.spawn(["flush", "--json", "--jobs", "1", ...decorated.args], {
    env: decorated.env,
  });
  await waitFor("the big flush to hold the lock on vpc/big", async () => {
    if (slow.exited) throw new Error(`big flush ended early\n${describe(await slow.done)}`);
    const res = await others[0].run(["lock", "status", "--json"]);
    const locks = expectJson(res, "modelsync.locks/1").locks as Record<string, unknown>[];
    return locks.some((l) => l.key === "vpc/big" && l.pid === slow.pid && l.state === "live");
  }, { timeoutMs: 30_000, intervalMs: 50 });

  // Three flushes of three other models at once, while the big one runs.
  const small = await Promise.all(others.map((r) => r.spawn(["flush", "--json"]).done));
  assert.equal(slow.exited, false, "the big flush is still running when the small ones exit");
  for (const [i, res] of small.entries()) {
    expectCode(res, 0, `flush small${i}`);
    assert.doesNotMatch(res.stderr, /Waiting for the/, describe(res));
    const { doc, r } = flushReport(res, `vpc/small${i}`);
    assert.equal(doc.lockPath, "scoped");
    assert.equal(r.status, "pushed");
    assert.equal(r.files, 3);
  }
  const bigRes = expectCode(await slow.done, 0, "big flush");
  assert.equal(flushReport(bigRes, "vpc/big").r.files, 30);

  const reader = await sqliteRepo(sb, "reader");
  expectCode(await reader.run(["pull"]), 0, "pull everything");
  assert.deepEqual(
    (await reader.modelFiles("vpc/big")).length,
    30,
    "the big model did not land whole",
  );
  for (let i = 0; i < others.length; i++) {
    assert.equal((await reader.modelFiles(`vpc/small${i}`)).length, 3);
  }
  const locks = expectJson(await reader.run(["lock", "status", "--json"]), "modelsync.locks/1");
  assert.deepEqual(locks.locks, [], "a lock was left behind");
});
