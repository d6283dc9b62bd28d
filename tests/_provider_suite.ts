/**
 * The end-to-end suite every datastore type passes, written once: the real
 * CLI as a subprocess against a real datastore, read back only through the
 * CLI (`log`, `lock status`, `verify`), so nothing here knows a provider's
 * layout. A provider's test file registers it with a factory of fresh
 * datastores:
 *
 * ```ts ignore
 * import { providerSuite } from "./_provider_suite.ts";
 * providerSuite({
 *   name: "filesystem",
 *   testOptions: () => ({}),
 *   create: async () => { const sb = await Sandbox.create(); return { sb, dispose: () => sb.dispose() }; },
 * });
 * ```
 *
 * Cases: push then pull brings every byte; the same file changed twice is a
 * conflict (exit 4) that keeps local files; different files changed twice
 * both land by rebase; flushes of different models do not wait for each
 * other (scoped datastores); a held model lock makes a second writer exit
 * 75 naming the holder; `log` and `restore` of a deleted model. Slowness
 * comes from the test decorator tests/fixtures/slow_store.ts, given only to
 * the process meant to be slow, never from a hook in the product.
 *
 * @module
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
  type RunResult,
  type Sandbox,
  slowStore,
  snapshot,
  waitFor,
  writeModelFiles,
} from "./_helpers.ts";

/** A fresh, empty datastore and a sandbox whose repositories use it. */
export interface SuiteStore {
  /** `sb.datastoreSpec` and `sb.env` reach the datastore. */
  sb: Sandbox;
  dispose(): Promise<void>;
}

/** A datastore type under test. */
export interface SuiteTarget {
  /** Shown in every test name, e.g. "PostgreSQL through PgBouncer". */
  name: string;
  /** Options of each `Deno.test` (e.g. `ignore` when the server is absent). */
  testOptions: () => Omit<Deno.TestDefinition, "name" | "fn">;
  /** A fresh datastore; `hint` names the test. */
  create(hint: string): Promise<SuiteStore>;
}

interface Generation {
  generation: number;
  files: number;
  deleted: boolean;
}

interface LockRow {
  key: string;
  pid: number;
}

/** The generations of a model, newest first, as `log --json` reports them. */
async function generations(repo: Repo, model: string): Promise<Generation[]> {
  const res = expectCode(await repo.run(["log", model, "--json"]), 0, `log ${model}`);
  return expectJson(res, "modelsync.log/1").generations as Generation[];
}

/** Every lock of the datastore, as `lock status --json` reports them. */
async function locks(repo: Repo): Promise<LockRow[]> {
  const res = expectCode(await repo.run(["lock", "status", "--json"]), 0, "lock status");
  return expectJson(res, "modelsync.locks/1").locks as LockRow[];
}

/** `verify --read-data` finds nothing and no lock is left. */
async function assertClean(repo: Repo): Promise<void> {
  const v = expectJson(
    expectCode(await repo.run(["verify", "--read-data", "--json"]), 0, "verify"),
    "modelsync.verify/1",
  );
  assert.deepEqual(v.problems, []);
  assert.deepEqual(await locks(repo), [], "no lock left behind");
}

/**
 * Starts a flush of `model` that holds its lock for `holdMs` before it
 * reads its head (through the slow-store decorator) and waits until `lockKey` is
 * held by it, as another repository sees it.
 */
async function startSlowFlush(
  sb: Sandbox,
  repo: Repo,
  observer: Repo,
  opts: { model: string; lockKey: string; holdMs: number; args?: string[] },
): Promise<CliProcess> {
  await writeModelFiles(repo, opts.model, { count: 4, size: 1024, seed: 2 });
  const slow = slowStore(sb, { head: opts.holdMs });
  const proc = repo.spawn(["flush", "--json", ...slow.args, ...(opts.args ?? [])], {
    env: slow.env,
  });
  await waitFor(`the slow flush to hold ${opts.lockKey}`, async () => {
    if (proc.exited) throw new Error(`slow flush ended early\n${describe(await proc.done)}`);
    return (await locks(observer)).some((l) => l.key === opts.lockKey && l.pid === proc.pid);
  }, { intervalMs: 200 });
  return proc;
}

function row(res: RunResult, schema: string, model: string) {
  const doc = expectJson(res, schema);
  const r = reportByModel(doc).get(model);
  assert.ok(r, describe(res));
  return { doc, r };
}

/** Registers the end-to-end suite for one datastore type. */
export function providerSuite(target: SuiteTarget): void {
  const test = (name: string, fn: (store: SuiteStore) => Promise<void>, hint: string) =>
    Deno.test({
      name: `${target.name}: ${name}`,
      ...target.testOptions(),
      async fn() {
        const store = await target.create(hint);
        try {
          await fn(store);
        } finally {
          await store.dispose();
        }
      },
    });

  test(
    "push, then pull in another repository: every byte, mode and path arrives",
    async ({ sb }) => {
      const a = await sb.repo("a", { MODELSYNC_HOLDER: "alice" });
      const b = await sb.repo("b", { MODELSYNC_HOLDER: "bob" });
      await writeModelFiles(a, "vision/resnet", { count: 5, size: 40_000, seed: 1 });
      await a.write("models/vision/resnet/config/params.json", '{"layers": 50}\n');
      await a.write("models/vision/resnet/run.sh", "#!/bin/sh\necho hi\n", 0o755);
      await a.write("models/vision/resnet/empty.txt", "");
      await writeModelFiles(a, "@acme/nlp/bert", { count: 3, size: 3_000, seed: 2 });

      const push = expectCode(await a.run(["push", "--json"]), 0, "push");
      const pushed = reportByModel(expectJson(push, "modelsync.push/1"));
      assert.equal(pushed.get("vision/resnet")?.status, "pushed", describe(push));
      assert.equal(pushed.get("vision/resnet")?.generation, 1);
      assert.equal(pushed.get("@acme/nlp/bert")?.status, "pushed", describe(push));

      const pull = expectCode(await b.run(["pull", "--json"]), 0, "pull");
      const pulled = reportByModel(expectJson(pull, "modelsync.pull/1"));
      assert.equal(pulled.get("vision/resnet")?.status, "pulled", describe(pull));
      assert.equal(pulled.get("@acme/nlp/bert")?.status, "pulled", describe(pull));
      for (const model of ["vision/resnet", "@acme/nlp/bert"]) {
        assert.deepEqual(
          await snapshot(b.modelDir(model)),
          await snapshot(a.modelDir(model)),
          `${model} arrives byte for byte, with its executable bit`,
        );
      }
      for (const repo of [a, b]) {
        const st = expectJson(
          expectCode(await repo.run(["status", "--remote", "--json"]), 0, "status"),
          "modelsync.status/1",
        );
        for (const m of st.models as { model: string; remote: { state: string } }[]) {
          assert.equal(m.remote.state, "same", `${m.model} in ${repo.dir}: ${JSON.stringify(m)}`);
        }
      }
      const noop = expectCode(await b.run(["pull", "--json"]), 0, "no-op pull");
      assert.equal(
        reportByModel(expectJson(noop, "modelsync.pull/1")).get("vision/resnet")?.status,
        "unchanged",
      );
      await assertClean(a);
    },
    "roundtrip",
  );

  test(
    "the same file changed in two repositories: the second push exits 4 and keeps its files",
    async ({ sb }) => {
      const r1 = await sb.repo("r1", { MODELSYNC_HOLDER: "one" });
      const r2 = await sb.repo("r2", { MODELSYNC_HOLDER: "two" });
      await r1.write("models/vpc/m1/a.txt", "a base\n");
      await r1.write("models/vpc/m1/b.txt", "b base\n");
      expectCode(await r1.run(["push"]), 0, "base push");
      expectCode(await r2.run(["pull"]), 0, "base pull");

      await r1.write("models/vpc/m1/a.txt", "a as one wants it\n");
      await r2.write("models/vpc/m1/a.txt", "a as two wants it\n");
      await r2.write("models/vpc/m1/c.txt", "c, new in two\n");
      expectCode(await r1.run(["push"]), 0, "first push");
      const res = expectCode(await r2.run(["push", "--json"]), 4, "second push");
      const { r } = row(res, "modelsync.push/1", "vpc/m1");
      assert.equal(r.status, "conflict", describe(res));
      assert.deepEqual(r.conflicts, ["a.txt"], describe(res));
      assert.match(res.stderr, /^modelsync: error: .*a\.txt.*modelsync pull/m, describe(res));
      assert.equal(await r2.read("models/vpc/m1/a.txt"), "a as two wants it\n", "local file kept");
      assert.equal(await r2.read("models/vpc/m1/c.txt"), "c, new in two\n");
      const gens = await generations(r2, "vpc/m1");
      assert.deepEqual(gens.map((g) => [g.generation, g.files]), [[2, 2], [1, 2]]);
    },
    "conflict",
  );

  test(
    "different files changed in two repositories: both land, the later push rebases",
    async ({ sb }) => {
      const r1 = await sb.repo("r1", { MODELSYNC_HOLDER: "one" });
      const r2 = await sb.repo("r2", { MODELSYNC_HOLDER: "two" });
      await r1.write("models/vpc/m1/a.txt", "a base\n");
      await r1.write("models/vpc/m1/b.txt", "b base\n");
      await r1.write("models/vpc/m1/c.txt", "c base\n");
      expectCode(await r1.run(["push"]), 0, "base push");
      expectCode(await r2.run(["pull"]), 0, "base pull");

      await r1.write("models/vpc/m1/a.txt", "a changed by one\n");
      await r1.write("models/vpc/m1/new-one.txt", "added by one\n");
      await r2.write("models/vpc/m1/b.txt", "b changed by two\n");
      await Deno.remove(r2.path("models/vpc/m1/c.txt"));
      const [res1, res2] = await Promise.all([
        r1.spawn(["push", "--json"]).done,
        r2.spawn(["push", "--json"]).done,
      ]);
      const one = row(expectCode(res1, 0, "push one"), "modelsync.push/1", "vpc/m1").r;
      const two = row(expectCode(res2, 0, "push two"), "modelsync.push/1", "vpc/m1").r;
      assert.deepEqual([one.status, two.status], ["pushed", "pushed"]);
      assert.deepEqual([one.generation, two.generation].sort(), [2, 3]);
      const later = one.generation === 3 ? one : two;
      assert.equal(later.rebased, true, `the later push rebased: ${JSON.stringify(later)}`);

      const r3 = await sb.repo("r3");
      expectCode(await r3.run(["pull"]), 0, "fresh pull");
      assert.deepEqual(await r3.modelFiles("vpc/m1"), ["a.txt", "b.txt", "new-one.txt"]);
      assert.equal(await r3.read("models/vpc/m1/a.txt"), "a changed by one\n");
      assert.equal(await r3.read("models/vpc/m1/b.txt"), "b changed by two\n");
      assert.equal(await r3.read("models/vpc/m1/new-one.txt"), "added by one\n");
      await assertClean(r3);
    },
    "rebase",
  );

  test("flushes of different models do not wait for each other (scoped locks)", async ({ sb }) => {
    const big = await sb.repo("big", { MODELSYNC_HOLDER: "big" });
    const small = await sb.repo("small", { MODELSYNC_HOLDER: "small" });
    await small.write("models/vpc/small/one.txt", "one small file\n");
    const caps = expectJson(expectCode(await small.run(["caps", "--json"]), 0), "modelsync.caps/1");
    assert.equal(
      (caps.capabilities as { scopedSync: boolean }).scopedSync,
      true,
      "a scoped datastore",
    );

    const slow = await startSlowFlush(sb, big, small, {
      model: "vpc/big",
      lockKey: "vpc/big",
      holdMs: 6_000,
    });
    const res = await small.run(["flush", "--json"]);
    assert.equal(slow.exited, false, "the slow flush still runs when the small one exits");
    expectCode(res, 0, "small flush");
    assert.doesNotMatch(res.stderr, /Waiting for the/, describe(res));
    const s = row(res, "modelsync.flush/1", "vpc/small");
    assert.equal(s.doc.lockPath, "scoped");
    assert.equal(s.r.status, "pushed");
    const b = row(expectCode(await slow.done, 0, "slow flush"), "modelsync.flush/1", "vpc/big");
    assert.equal(b.r.status, "pushed");
    assert.equal(b.r.files, 4);
    await assertClean(small);
  }, "scoped");

  test(
    "a held model lock makes a second writer exit 75 naming the holder; local files kept",
    async ({ sb }) => {
      const r1 = await sb.repo("r1", { MODELSYNC_HOLDER: "alice" });
      const r2 = await sb.repo("r2", { MODELSYNC_HOLDER: "bob" });
      await r1.write("models/vpc/m1/first.txt", "generation one\n");
      expectCode(await r1.run(["push"]), 0, "first push");
      expectCode(await r2.run(["pull"]), 0, "first pull");
      await r2.write("models/vpc/m1/bob.txt", "bob's change\n");

      const slow = await startSlowFlush(sb, r1, r2, {
        model: "vpc/m1",
        lockKey: "vpc/m1",
        holdMs: 8_000,
      });
      const res = await r2.run(["push", "--json", "--lock-timeout", "1s", "vpc/m1"]);
      assert.equal(slow.exited, false, "the slow flush still holds the lock");
      expectCode(res, 75, "second writer");
      const holder = `alice@${HOST} pid ${slow.pid}`;
      const errors = res.stderr.split("\n").filter((l) => l.startsWith("modelsync: error: "));
      assert.equal(errors.length, 1, describe(res));
      assert.match(errors[0], /Timed out after 1s/);
      assert.ok(errors[0].includes(holder), describe(res));
      assert.match(errors[0], /modelsync lock release --force vpc\/m1/);
      assert.equal(row(res, "modelsync.push/1", "vpc/m1").r.status, "lock-timeout");
      assert.equal(await r2.read("models/vpc/m1/bob.txt"), "bob's change\n", "local change kept");

      expectCode(await slow.done, 0, "slow flush");
      const retry = expectCode(await r2.run(["push", "--json"]), 0, "retry");
      const r = row(retry, "modelsync.push/1", "vpc/m1").r;
      assert.equal(r.status, "pushed", describe(retry));
      assert.equal(r.generation, 3);
      assert.equal((await generations(r2, "vpc/m1"))[0].files, 6);
      await assertClean(r2);
    },
    "locktimeout",
  );

  test(
    "log lists a model's generations; restore brings back a deleted model, push and pull carry it",
    async ({ sb }) => {
      const a = await sb.repo("a", { MODELSYNC_HOLDER: "alice" });
      const b = await sb.repo("b");
      await a.write("models/vpc/m1/config.json", '{"v":1}\n');
      await a.write("models/vpc/m1/bin/run.sh", "#!/bin/sh\necho one\n", 0o755);
      expectCode(await a.run(["push"]), 0, "push 1");
      await a.write("models/vpc/m1/config.json", '{"v":2}\n');
      await a.write("models/vpc/m1/data/extra.txt", "extra\n");
      expectCode(await a.run(["push"]), 0, "push 2");
      const gen2 = await snapshot(a.modelDir("vpc/m1"));
      await Deno.remove(a.modelDir("vpc/m1"), { recursive: true });
      expectCode(await a.run(["push", "vpc/m1"]), 0, "push the deletion");

      assert.deepEqual(
        (await generations(a, "vpc/m1")).map((g) => [g.generation, g.files, g.deleted]),
        [[3, 0, true], [2, 3, false], [1, 2, false]],
      );
      assert.match(expectOneLineError(await a.run(["log", "vpc/none"]), 3), /not in the datastore/);

      const res = expectJson(
        expectCode(await a.run(["restore", "vpc/m1@2", "--json"]), 0, "restore"),
        "modelsync.restore/1",
      );
      assert.equal(res.written, 3);
      assert.deepEqual(await snapshot(a.modelDir("vpc/m1")), gen2);
      const push = expectCode(await a.run(["push", "--json"]), 0, "push the restored model");
      assert.equal(row(push, "modelsync.push/1", "vpc/m1").r.generation, 4);
      expectCode(await b.run(["pull"]), 0, "b pulls generation 4");
      assert.deepEqual(await snapshot(b.modelDir("vpc/m1")), gen2, "b has generation 2's files");
      await assertClean(b);
    },
    "history",
  );
}
