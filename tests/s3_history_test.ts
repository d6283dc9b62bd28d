/**
 * End-to-end history on an S3 datastore (the local S3 test server): `log`
 * and `restore` of a model deleted by a tombstone, then push and pull in
 * another repository; `verify` finds a deleted and a corrupted blob; `gc
 * --keep 1` removes older generations and `log` says so.
 */
import assert from "node:assert/strict";
import { expectCode, expectJson, expectOneLineError, sha256, snapshot } from "./_helpers.ts";
import { S3Sandbox, s3TestOptions } from "./_s3.ts";

interface Generation {
  generation: number;
  files: number;
  deleted: boolean;
  changes: { added: number; modified: number; deleted: number } | null;
}

Deno.test({
  name:
    "S3: log lists a model's generations; restore brings back a model deleted by a tombstone, push commits it and another repository pulls it",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-history");
    const a = await s3.sb.repo("a", { MODELSYNC_HOLDER: "alice" });
    const b = await s3.sb.repo("b");
    await a.write("models/vpc/m1/config.json", '{"v":1}\n');
    await a.write("models/vpc/m1/bin/run.sh", "#!/bin/sh\necho one\n", 0o755);
    expectCode(await a.run(["push"]), 0, "push 1");
    await a.write("models/vpc/m1/config.json", '{"v":2}\n');
    await a.write("models/vpc/m1/data/extra.txt", "extra\n");
    expectCode(await a.run(["push"]), 0, "push 2");
    const gen2 = await snapshot(a.modelDir("vpc/m1"));
    expectCode(await b.run(["pull"]), 0, "b pulls generation 2");
    await Deno.remove(a.modelDir("vpc/m1"), { recursive: true });
    expectCode(await a.run(["push", "vpc/m1"]), 0, "push the deletion");
    expectCode(await b.run(["pull"]), 0, "b pulls the deletion");
    assert.equal(await b.has("models/vpc/m1"), false);

    const log = expectJson(
      expectCode(await a.run(["log", "vpc/m1", "--json"]), 0),
      "modelsync.log/1",
    );
    assert.deepEqual(
      (log.generations as Generation[]).map((g) => [g.generation, g.files, g.deleted, g.changes]),
      [
        [3, 0, true, { added: 0, modified: 0, deleted: 3 }],
        [2, 3, false, { added: 1, modified: 1, deleted: 0 }],
        [1, 2, false, { added: 2, modified: 0, deleted: 0 }],
      ],
    );
    assert.equal(log.end, "first");
    const human = expectCode(await a.run(["log", "vpc/m1"]), 0, "log (human)");
    assert.match(human.stdout, /^3\s.*alice@.*deleted model$/m);
    assert.match(expectOneLineError(await a.run(["log", "vpc/none"]), 3), /not in the datastore/);

    const res = expectJson(
      expectCode(await a.run(["restore", "vpc/m1@2", "--json"]), 0, "restore"),
      "modelsync.restore/1",
    );
    assert.deepEqual(res.head, { generation: 3, deleted: true });
    assert.equal(res.written, 3);
    assert.deepEqual(await snapshot(a.modelDir("vpc/m1")), gen2);
    const push = expectJson(expectCode(await a.run(["push", "--json"]), 0), "modelsync.push/1");
    assert.equal((push.models as { generation: number }[])[0].generation, 4);
    expectCode(await b.run(["pull"]), 0, "b pulls generation 4");
    assert.deepEqual(await snapshot(b.modelDir("vpc/m1")), gen2, "b has generation 2's files");
    const after = expectJson(
      expectCode(await b.run(["log", "vpc/m1", "--json"]), 0),
      "modelsync.log/1",
    );
    assert.deepEqual(
      (after.generations as Generation[]).map((g) => g.generation),
      [4, 3, 2, 1],
    );
    assert.deepEqual((after.generations as Generation[])[0].changes, {
      added: 3,
      modified: 0,
      deleted: 0,
    });

    // Local changes are refused without --force.
    await b.write("models/vpc/m1/config.json", '{"v":"mine"}\n');
    assert.match(
      expectOneLineError(await b.run(["restore", "vpc/m1@1"]), 4),
      /local changes to config\.json/,
    );
    assert.equal(await b.read("models/vpc/m1/config.json"), '{"v":"mine"}\n');
  },
});

Deno.test({
  name:
    "S3: verify finds a deleted and a corrupted blob; gc --keep 1 removes older generations, log says so, and a fresh pull gets everything",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-verify-gc");
    const a = await s3.sb.repo("a");
    await a.noPacks(); // a blob per file: the test deletes and corrupts single blobs
    for (const v of [1, 2, 3]) {
      await a.write("models/vpc/m1/a.txt", `a ${v}\n`);
      await a.write("models/vpc/m1/same.txt", "same\n");
      expectCode(await a.run(["push"]), 0, `push ${v}`);
    }
    const clean = expectJson(
      expectCode(await a.run(["verify", "--read-data", "--json"]), 0),
      "modelsync.verify/1",
    );
    assert.deepEqual(clean.problems, []);
    assert.equal(clean.blobs, 4);

    const blob = (text: string) => `blobs/${sha256(text).slice(0, 2)}/${sha256(text)}`;
    await s3.store.delete(blob("a 2\n"));
    await s3.store.put(blob("a 1\n"), "a !\n");
    const found = expectJson(
      expectCode(await a.run(["verify", "--json"]), 6),
      "modelsync.verify/1",
    );
    assert.deepEqual(
      (found.problems as { generation: number; path: string; problem: string }[]).map((
        p,
      ) => [p.generation, p.path, p.problem]),
      [[2, "a.txt", "missing-blob"]],
    );
    const deep = expectJson(
      expectCode(await a.run(["verify", "--read-data", "--json"]), 6),
      "modelsync.verify/1",
    );
    assert.deepEqual(
      (deep.problems as { generation: number; path: string; problem: string }[]).map((
        p,
      ) => [p.generation, p.path, p.problem]),
      [[2, "a.txt", "missing-blob"], [1, "a.txt", "corrupt-blob"]],
    );

    const dry = expectJson(
      expectCode(await a.run(["gc", "--keep", "1", "--grace", "0s", "--dry-run", "--json"]), 0),
      "modelsync.gc/1",
    );
    assert.deepEqual(dry.removed, { generations: 2, orphans: 0, blobs: 1, bytes: 4 });
    const gc = expectJson(
      expectCode(await a.run(["gc", "--keep", "1", "--grace", "0s", "--json"]), 0, "gc"),
      "modelsync.gc/1",
    );
    assert.equal(gc.lockPath, "global");
    assert.deepEqual(gc.removed, { generations: 2, orphans: 0, blobs: 1, bytes: 4 });
    assert.deepEqual(await s3.store.keys("leases/"), [], "no lock left behind");
    const log = expectCode(await a.run(["log", "vpc/m1"]), 0, "log");
    assert.match(log.stdout, /older generations removed by gc\n$/);
    assert.deepEqual(
      expectJson(
        expectCode(await a.run(["verify", "--read-data", "--json"]), 0),
        "modelsync.verify/1",
      )
        .problems,
      [],
      "what gc kept is intact",
    );
    const c = await s3.sb.repo("c");
    expectCode(await c.run(["pull"]), 0, "fresh pull");
    assert.deepEqual(await snapshot(c.modelDir("vpc/m1")), await snapshot(a.modelDir("vpc/m1")));
  },
});
