/**
 * End-to-end: a model's generation never goes backwards (issue 8, point 3)
 * on the filesystem datastore. A restore from backup is simulated by
 * putting an older commit back at the model's head and removing the newer
 * history records (design/format.md):
 * pull stops with a conflict naming both generations unless --theirs, and
 * push or flush commit the local state as a new generation above both.
 */
import assert from "node:assert/strict";
import { describe, expectCode, expectJson, type Repo, Sandbox, snapshot } from "./_helpers.ts";
import { contents, generations, restoreBackup, rowOf, savedCopies } from "./_data_loss.ts";

/** a pushes generation 1 then 2 of vpc/m1; b and c pull generation 2. */
async function atGenerationTwo(sb: Sandbox): Promise<{ a: Repo; b: Repo; c: Repo }> {
  const a = await sb.repo("a");
  await a.write("models/vpc/m1/a.txt", "a one\n");
  await a.write("models/vpc/m1/b.txt", "b one\n");
  expectCode(await a.run(["push"]), 0, "generation 1");
  await a.write("models/vpc/m1/a.txt", "a two\n");
  await a.write("models/vpc/m1/c.txt", "c two\n");
  expectCode(await a.run(["push"]), 0, "generation 2");
  const b = await sb.repo("b");
  const c = await sb.repo("c");
  expectCode(await b.run(["pull"]), 0);
  expectCode(await c.run(["pull"]), 0);
  return { a, b, c };
}

Deno.test("a datastore restored to an older generation: pull is a conflict naming both, push commits above both", async () => {
  await using sb = await Sandbox.create();
  const { a, b, c } = await atGenerationTwo(sb);
  const genTwo = await snapshot(b.modelDir("vpc/m1"));
  await restoreBackup(sb, "vpc/m1", 1);

  const pull = await b.run(["pull", "--json"]);
  expectCode(pull, 4, "pull from a datastore that went back");
  const row = rowOf(expectJson(pull, "modelsync.pull/1"), "vpc/m1");
  assert.equal(row?.status, "conflict", describe(pull));
  assert.match(row?.error ?? "", /generation 1 .*older than generation 2 synced here/);
  assert.match(row?.error ?? "", /"modelsync push vpc\/m1"/);
  assert.match(row?.error ?? "", /"modelsync pull --theirs vpc\/m1"/);
  assert.deepEqual(await snapshot(b.modelDir("vpc/m1")), genTwo, "nothing reverted or deleted");
  const saved = await savedCopies(b, "vpc/m1");
  assert.deepEqual(Object.values(saved), ["a one\n"], "the datastore's a.txt is saved to compare");
  assert.match(Object.keys(saved)[0], /^\d{8}T\d{6}\.\d{3}Z-gen1-theirs\/a\.txt$/);
  const st = expectJson(
    expectCode(await b.run(["status", "--remote", "--json"]), 0),
    "modelsync.status/1",
  );
  assert.deepEqual(
    (st.models as { remote: unknown }[])[0].remote,
    { generation: 1, state: "diverged" },
  );

  // c takes the restored state with --theirs: its generation-2 files are saved first.
  const theirs = expectCode(await c.run(["pull", "--theirs", "--json"]), 0, "pull --theirs");
  const tr = rowOf(expectJson(theirs, "modelsync.pull/1"), "vpc/m1");
  assert.equal(tr?.status, "pulled", describe(theirs));
  assert.equal(tr?.generation, 1);
  assert.match(tr?.warning ?? "", /older than generation 2/);
  assert.deepEqual(tr?.saved?.paths, ["a.txt", "c.txt"], describe(theirs));
  assert.equal(tr?.saved?.side, "ours");
  assert.deepEqual(await contents(c.modelDir("vpc/m1")), {
    "a.txt": "a one\n",
    "b.txt": "b one\n",
  });
  assert.deepEqual(Object.values(await savedCopies(c, "vpc/m1")).sort(), ["a two\n", "c two\n"]);

  // b has no local change; push still commits its state, above both (was: "unchanged").
  const push = expectCode(await b.run(["push", "--json"]), 0, "push above both");
  const pr = rowOf(expectJson(push, "modelsync.push/1"), "vpc/m1");
  assert.equal(pr?.status, "pushed", describe(push));
  assert.equal(pr?.generation, 3);
  assert.match(pr?.warning ?? "", /generation 1 .*not newer than generation 2.*generation 3/);
  assert.match(push.stderr, /^modelsync: warning: .*generation 3, above both/m, describe(push));
  // One commit above both: the history the restore lost (2) is not made up again.
  assert.deepEqual(await generations(sb, "vpc/m1"), [1, 3]);
  const head = await sb.datastore.current("vpc/m1");
  assert.deepEqual(head?.files.map((f) => f.path), ["a.txt", "b.txt", "c.txt"]);
  assert.deepEqual(await snapshot(b.modelDir("vpc/m1")), genTwo);
  expectCode(await b.run(["pull"]), 0, "b is level afterwards");

  // Everyone who synced generation 2 (a) or the restored 1 (c) gets generation 3.
  for (const repo of [a, c]) {
    const res = expectCode(await repo.run(["pull", "--json"]), 0, `pull in ${repo.dir}`);
    const r = rowOf(expectJson(res, "modelsync.pull/1"), "vpc/m1");
    assert.equal(r?.generation, 3, describe(res));
    assert.deepEqual(await snapshot(repo.modelDir("vpc/m1")), genTwo, repo.dir);
  }
});

Deno.test("flush commits local changes above a datastore that went back; the same generation with other files counts as going back", async () => {
  await using sb = await Sandbox.create();
  const { b, c } = await atGenerationTwo(sb);
  await restoreBackup(sb, "vpc/m1", 1);
  // Another writer commits a different generation 2 on the restored datastore.
  const d = await sb.repo("d");
  await d.write("models/vpc/m1/a.txt", "a one\n");
  await d.write("models/vpc/m1/b.txt", "b one\n");
  expectCode(await d.run(["push"]), 0);
  await d.write("models/vpc/m1/d.txt", "d, a new generation 2\n");
  expectCode(await d.run(["push"]), 0);
  assert.deepEqual(await generations(sb, "vpc/m1"), [1, 2]);

  const pull = await c.run(["pull"]);
  expectCode(pull, 4, "same generation, other content");
  assert.match(pull.stderr, /generation 2 of vpc\/m1 differs from the generation 2 synced here/);
  assert.equal(await c.read("models/vpc/m1/a.txt"), "a two\n");
  assert.equal(await c.has("models/vpc/m1/d.txt"), false);

  await b.write("models/vpc/m1/b.txt", "b edited in b\n");
  const flush = expectCode(await b.run(["flush", "--json"]), 0, "flush");
  const r = rowOf(expectJson(flush, "modelsync.flush/1"), "vpc/m1");
  assert.equal(r?.status, "pushed", describe(flush));
  assert.equal(r?.generation, 3);
  assert.ok(r?.warning !== undefined, describe(flush));
  const head = await sb.datastore.current("vpc/m1");
  assert.equal(head?.generation, 3);
  assert.deepEqual(head?.files.map((f) => f.path), ["a.txt", "b.txt", "c.txt"]);
  // pull --ours keeps c's files and says the push will go above both.
  await restoreBackup(sb, "vpc/m1", 2);
  const ours = expectCode(await c.run(["pull", "--ours", "--json"]), 0, "pull --ours");
  const or = rowOf(expectJson(ours, "modelsync.pull/1"), "vpc/m1");
  assert.equal(or?.status, "kept", describe(ours));
  assert.deepEqual(or?.saved?.paths, ["a.txt", "d.txt"], describe(ours));
  assert.equal(await c.read("models/vpc/m1/a.txt"), "a two\n");
  const again = expectCode(await c.run(["push", "--json"]), 0, "c pushes above");
  assert.equal(rowOf(expectJson(again, "modelsync.push/1"), "vpc/m1")?.generation, 3);
  expectCode(await d.run(["pull"]), 0, "d pulls generation 3");
  assert.deepEqual(await snapshot(d.modelDir("vpc/m1")), await snapshot(c.modelDir("vpc/m1")));
});
