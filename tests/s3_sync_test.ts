/**
 * End-to-end sync on an S3 datastore (the local S3 test server): push then
 * pull in another repository brings every byte; the same file changed in two
 * repositories is a conflict (exit 4) that keeps local files; different files
 * changed in two repositories both land by automatic rebase.
 */
import assert from "node:assert/strict";
import {
  describe,
  expectCode,
  expectJson,
  Repo,
  reportByModel,
  snapshot,
  writeModelFiles,
} from "./_helpers.ts";
import { S3_ENDPOINT, S3Sandbox, s3TestOptions } from "./_s3.ts";

Deno.test({
  name: "S3: push, then pull in another repository: every byte, mode and path arrives",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-roundtrip");
    const a = await s3.sb.repo("a", { MODELSYNC_HOLDER: "alice" });
    // b names the endpoint in the spec instead of the environment.
    const bEnv = { MODELSYNC_HOLDER: "bob", AWS_ENDPOINT_URL_S3: "" };
    const b = new Repo(s3.sb, await s3.sb.dir("b"), bEnv);
    const spec = `s3://${s3.bucket}/${s3.prefix}?endpoint=${encodeURIComponent(S3_ENDPOINT!)}`;
    expectCode(await b.run(["init", "--datastore", spec]), 0, "init with ?endpoint=");
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
    assert.deepEqual(await s3.store.integrityProblems(), []);
    assert.deepEqual(
      (await s3.store.keys()).filter((k) => k.startsWith("leases/")),
      [],
      "no lock left behind",
    );
    assert.ok((await s3.store.keys()).includes("config"), "the datastore marker");

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
    // Both repositories are now clean and level with the datastore.
    for (const repo of [a, b]) {
      const st = expectJson(
        expectCode(await repo.run(["status", "--remote", "--json"]), 0, "status"),
        "modelsync.status/1",
      );
      for (const m of st.models as { model: string; remote: { state: string } }[]) {
        assert.equal(m.remote.state, "same", `${m.model} in ${repo.dir}: ${JSON.stringify(m)}`);
      }
    }
  },
});

Deno.test({
  name:
    "S3: the same file changed in two repositories: the second push exits 4 and keeps its files",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-conflict");
    const r1 = await s3.sb.repo("r1", { MODELSYNC_HOLDER: "one" });
    const r2 = await s3.sb.repo("r2", { MODELSYNC_HOLDER: "two" });
    await r1.write("models/vpc/m1/a.txt", "a base\n");
    await r1.write("models/vpc/m1/b.txt", "b base\n");
    expectCode(await r1.run(["push"]), 0, "base push");
    expectCode(await r2.run(["pull"]), 0, "base pull");

    await r1.write("models/vpc/m1/a.txt", "a as one wants it\n");
    await r2.write("models/vpc/m1/a.txt", "a as two wants it\n");
    await r2.write("models/vpc/m1/c.txt", "c, new in two\n");
    expectCode(await r1.run(["push"]), 0, "first push");
    const res = await r2.run(["push", "--json"]);
    expectCode(res, 4, "second push");
    const r = reportByModel(expectJson(res, "modelsync.push/1")).get("vpc/m1");
    assert.equal(r?.status, "conflict", describe(res));
    assert.deepEqual(r?.conflicts, ["a.txt"], describe(res));
    assert.match(res.stderr, /^modelsync: error: .*a\.txt.*modelsync pull/m, describe(res));

    assert.equal(await r2.read("models/vpc/m1/a.txt"), "a as two wants it\n", "local file kept");
    assert.equal(await r2.read("models/vpc/m1/c.txt"), "c, new in two\n");
    const current = await s3.store.current("vpc/m1");
    assert.equal(current?.generation, 2, "only the first push committed");
    assert.deepEqual(current?.files.map((f) => f.path), ["a.txt", "b.txt"]);
    // The text form names the file and the remedy too.
    const text = await r2.run(["push"]);
    expectCode(text, 4, "push (text)");
    assert.match(text.stdout + text.stderr, /a\.txt/);
    assert.match(text.stderr, /modelsync pull/);
  },
});

Deno.test({
  name: "S3: different files changed in two repositories: both land, the second push rebases",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-rebase");
    const r1 = await s3.sb.repo("r1", { MODELSYNC_HOLDER: "one" });
    const r2 = await s3.sb.repo("r2", { MODELSYNC_HOLDER: "two" });
    await r1.write("models/vpc/m1/a.txt", "a base\n");
    await r1.write("models/vpc/m1/b.txt", "b base\n");
    await r1.write("models/vpc/m1/c.txt", "c base\n");
    expectCode(await r1.run(["push"]), 0, "base push");
    expectCode(await r2.run(["pull"]), 0, "base pull");

    await r1.write("models/vpc/m1/a.txt", "a changed by one\n");
    await r1.write("models/vpc/m1/new-one.txt", "added by one\n");
    await r2.write("models/vpc/m1/b.txt", "b changed by two\n");
    await Deno.remove(r2.path("models/vpc/m1/c.txt"));
    const p1 = r1.spawn(["push", "--json"]);
    const p2 = r2.spawn(["push", "--json"]);
    const [res1, res2] = await Promise.all([p1.done, p2.done]);
    const m1 = reportByModel(expectJson(expectCode(res1, 0, "push one"), "modelsync.push/1"));
    const m2 = reportByModel(expectJson(expectCode(res2, 0, "push two"), "modelsync.push/1"));
    const one = m1.get("vpc/m1")!;
    const two = m2.get("vpc/m1")!;
    assert.deepEqual([one.status, two.status], ["pushed", "pushed"]);
    assert.deepEqual([one.generation, two.generation].sort(), [2, 3]);
    const later = one.generation === 3 ? one : two;
    assert.equal(later.rebased, true, `the later push rebased: ${JSON.stringify(later)}`);

    const current = await s3.store.current("vpc/m1");
    assert.equal(current?.generation, 3);
    assert.deepEqual(current?.files.map((f) => f.path), ["a.txt", "b.txt", "new-one.txt"]);
    assert.deepEqual(await s3.store.integrityProblems(), []);
    const r3 = await s3.sb.repo("r3");
    expectCode(await r3.run(["pull"]), 0, "fresh pull");
    assert.deepEqual(await r3.modelFiles("vpc/m1"), ["a.txt", "b.txt", "new-one.txt"]);
    assert.equal(await r3.read("models/vpc/m1/a.txt"), "a changed by one\n");
    assert.equal(await r3.read("models/vpc/m1/b.txt"), "b changed by two\n");
    assert.equal(await r3.read("models/vpc/m1/new-one.txt"), "added by one\n");
  },
});
