/**
 * End-to-end on an S3 datastore (the local S3 test server): whole-model
 * deletes are deliberate (issue 8, point 2), generations never go backwards
 * (point 3; a restore from backup is simulated by putting an older body of
 * the head `heads/TYPE/ID` back with the S3 client), and conflicts keep both
 * sides (point 6).
 */
import assert from "node:assert/strict";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { describe, expectCode, expectJson, type Repo } from "./_helpers.ts";
import { S3_ENDPOINT, S3Sandbox, s3TestOptions } from "./_s3.ts";
import { contents, rowOf, savedCopies, summaryOf } from "./_data_loss.ts";

/** Puts `body` at `rel` below the datastore prefix, as a restore from backup would. */
async function putObject(s3: S3Sandbox, rel: string, body: Uint8Array): Promise<void> {
  const client = new S3Client({
    endpoint: S3_ENDPOINT!,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  });
  try {
    await client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: s3.store.key(rel), Body: body }),
    );
  } finally {
    client.destroy();
  }
}

/** a pushes vpc/m1 (a.txt, b.txt) and vpc/m2 (c.txt); b pulls both. */
async function twoRepos(s3: S3Sandbox): Promise<{ a: Repo; b: Repo }> {
  const a = await s3.sb.repo("a", { MODELSYNC_HOLDER: "alice" });
  const b = await s3.sb.repo("b", { MODELSYNC_HOLDER: "bob" });
  await a.write("models/vpc/m1/a.txt", "a one\n");
  await a.write("models/vpc/m1/b.txt", "b one\n");
  await a.write("models/vpc/m2/c.txt", "c one\n");
  expectCode(await a.run(["push"]), 0, "first push");
  expectCode(await b.run(["pull"]), 0, "first pull");
  return { a, b };
}

Deno.test({
  name:
    "S3: a model deleted here is delete-pending unless named or --allow-delete; tombstones report deleted",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-delete-guard");
    const { a, b } = await twoRepos(s3);
    await Deno.remove(a.modelDir("vpc/m1"), { recursive: true });
    await Deno.remove(a.modelDir("vpc/m2"), { recursive: true });
    const held = await a.run(["flush", "--json"]);
    expectCode(held, 2, "flush with held deletes only");
    const hd = expectJson(held, "modelsync.flush/1");
    assert.equal(rowOf(hd, "vpc/m1")?.status, "delete-pending", describe(held));
    assert.equal(summaryOf(hd).deletePending, 2);
    assert.equal((await s3.store.current("vpc/m1"))?.generation, 1, "no tombstone");
    assert.equal((await s3.store.current("vpc/m1"))?.files.length, 2);

    const named = expectCode(await a.run(["push", "--json", "vpc/m1"]), 0, "push vpc/m1");
    assert.equal(rowOf(expectJson(named, "modelsync.push/1"), "vpc/m1")?.status, "deleted");
    const allowed = expectCode(await a.run(["flush", "--json", "--allow-delete"]), 0);
    const ad = expectJson(allowed, "modelsync.flush/1");
    assert.equal(rowOf(ad, "vpc/m2")?.status, "deleted", describe(allowed));
    assert.equal(summaryOf(ad).deleted, 1);
    for (const model of ["vpc/m1", "vpc/m2"]) {
      const head = await s3.store.current(model);
      assert.equal(head?.generation, 2, model);
      assert.deepEqual(head?.files, [], `${model}: a tombstone`);
    }
    const pull = expectJson(expectCode(await b.run(["pull", "--json"]), 0), "modelsync.pull/1");
    assert.equal(rowOf(pull, "vpc/m1")?.status, "deleted");
    assert.deepEqual(await b.modelFiles("vpc/m1"), []);
  },
});

Deno.test({
  name:
    "S3: a datastore restored to an older manifest: pull is a conflict naming both generations, push commits above both",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-rollback");
    const { a, b } = await twoRepos(s3);
    const backup = (await s3.store.get("heads/vpc/m1"))!;
    await a.write("models/vpc/m1/a.txt", "a two\n");
    await a.write("models/vpc/m1/d.txt", "d two\n");
    expectCode(await a.run(["push"]), 0, "generation 2");
    expectCode(await b.run(["pull"]), 0, "b at generation 2");
    const genTwo = await contents(b.modelDir("vpc/m1"));
    await putObject(s3, "heads/vpc/m1", backup);
    assert.equal((await s3.store.current("vpc/m1"))?.generation, 1, "restored");

    const pull = await b.run(["pull", "--json"]);
    expectCode(pull, 4, "pull from the restored datastore");
    const row = rowOf(expectJson(pull, "modelsync.pull/1"), "vpc/m1");
    assert.equal(row?.status, "conflict", describe(pull));
    assert.match(row?.error ?? "", /generation 1 .*older than generation 2 synced here/);
    assert.deepEqual(await contents(b.modelDir("vpc/m1")), genTwo, "nothing reverted");
    assert.deepEqual(Object.values(await savedCopies(b, "vpc/m1")), ["a one\n"]);

    // No local change, yet the push commits b's state above both generations.
    const push = expectCode(await b.run(["push", "--json"]), 0, "push above both");
    const pr = rowOf(expectJson(push, "modelsync.push/1"), "vpc/m1");
    assert.equal(pr?.status, "pushed", describe(push));
    assert.equal(pr?.generation, 3);
    assert.match(pr?.warning ?? "", /above both/);
    const head = await s3.store.current("vpc/m1");
    assert.equal(head?.generation, 3);
    assert.deepEqual(head?.files.map((f) => f.path), ["a.txt", "b.txt", "d.txt"]);
    assert.deepEqual(await s3.store.integrityProblems(), []);
    const again = expectCode(await a.run(["pull", "--json"]), 0, "a pulls generation 3");
    assert.equal(rowOf(expectJson(again, "modelsync.pull/1"), "vpc/m1")?.generation, 3);
    assert.deepEqual(await contents(a.modelDir("vpc/m1")), genTwo);

    // --theirs takes a restored state, saving the local files it replaces.
    await putObject(s3, "heads/vpc/m1", backup);
    const theirs = expectCode(await a.run(["pull", "--theirs", "--json"]), 0, "pull --theirs");
    const tr = rowOf(expectJson(theirs, "modelsync.pull/1"), "vpc/m1");
    assert.equal(tr?.generation, 1, describe(theirs));
    assert.deepEqual(tr?.saved?.paths, ["a.txt", "d.txt"]);
    assert.deepEqual(await contents(a.modelDir("vpc/m1")), {
      "a.txt": "a one\n",
      "b.txt": "b one\n",
    });
  },
});

Deno.test({
  name:
    "S3: a pull conflict saves the datastore's version; --theirs and --ours save the side not chosen",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-conflict-copies");
    const { a, b } = await twoRepos(s3);
    await a.write("models/vpc/m1/a.txt", "a as alice wants it\n");
    expectCode(await a.run(["push"]), 0, "alice's change");
    await b.write("models/vpc/m1/a.txt", "a as bob wants it\n");

    const res = await b.run(["pull", "--json"]);
    expectCode(res, 4, "conflict");
    const row = rowOf(expectJson(res, "modelsync.pull/1"), "vpc/m1");
    assert.equal(row?.saved?.side, "theirs", describe(res));
    assert.match(
      row?.error ?? "",
      /"modelsync pull --ours vpc\/m1", then "modelsync push vpc\/m1"/,
    );
    assert.deepEqual(await contents(b.path(row!.saved!.dir)), { "a.txt": "a as alice wants it\n" });
    assert.equal(await b.read("models/vpc/m1/a.txt"), "a as bob wants it\n");

    const theirs = expectCode(await b.run(["pull", "--theirs", "--json"]), 0, "--theirs");
    const tr = rowOf(expectJson(theirs, "modelsync.pull/1"), "vpc/m1");
    assert.equal(tr?.saved?.side, "ours", describe(theirs));
    assert.deepEqual(await contents(b.path(tr!.saved!.dir)), { "a.txt": "a as bob wants it\n" });
    assert.equal(await b.read("models/vpc/m1/a.txt"), "a as alice wants it\n");

    await a.write("models/vpc/m1/b.txt", "b as alice wants it\n");
    expectCode(await a.run(["push"]), 0);
    await b.write("models/vpc/m1/b.txt", "b as bob wants it\n");
    const ours = expectCode(await b.run(["pull", "--ours", "--json"]), 0, "--ours");
    const or = rowOf(expectJson(ours, "modelsync.pull/1"), "vpc/m1");
    assert.equal(or?.saved?.side, "theirs", describe(ours));
    assert.deepEqual(await contents(b.path(or!.saved!.dir)), { "b.txt": "b as alice wants it\n" });
    expectCode(await b.run(["push"]), 0, "push ours");
    const head = await s3.store.current("vpc/m1");
    assert.equal(head?.generation, 4);
    assert.equal(Object.keys(await savedCopies(b, "vpc/m1")).length, 3, "every save kept");
    assert.deepEqual(await s3.store.integrityProblems(), []);
  },
});
