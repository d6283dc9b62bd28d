/**
 * End-to-end: conflicts keep both sides (issue 8, point 6) on the filesystem
 * datastore. A pull that stops on a conflict saves the datastore's version
 * under `.modelsync/conflicts/`; `--theirs` saves the local version it
 * replaces, `--ours` the datastore's version it does not take; repeated
 * conflicts never overwrite each other; saved copies are never synced.
 */
import assert from "node:assert/strict";
import {
  describe,
  expectCode,
  expectJson,
  expectOneLineError,
  type Repo,
  Sandbox,
} from "./_helpers.ts";
import { contents, rowOf, savedCopies, summaryOf } from "./_data_loss.ts";

/** a and b share generation 1 of vpc/m1; then a pushes a change to w.txt and b edits it too. */
async function conflicting(sb: Sandbox): Promise<{ a: Repo; b: Repo }> {
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  await a.write("models/vpc/m1/w.txt", "w base\n");
  await a.write("models/vpc/m1/d/x.txt", "x base\n");
  await a.write("models/vpc/m1/y.txt", "y base\n");
  expectCode(await a.run(["push"]), 0, "base");
  expectCode(await b.run(["pull"]), 0, "base pull");
  await a.write("models/vpc/m1/w.txt", "w as a wants it\n");
  await a.write("models/vpc/m1/d/x.txt", "x as a wants it\n");
  await a.write("models/vpc/m1/y.txt", "y changed by a only\n");
  expectCode(await a.run(["push"]), 0, "a's change, generation 2");
  await b.write("models/vpc/m1/w.txt", "w as b wants it\n");
  await b.write("models/vpc/m1/d/x.txt", "x as b wants it\n");
  return { a, b };
}

Deno.test("a pull conflict saves the datastore's version, prints where, and names the CI remedy", async () => {
  await using sb = await Sandbox.create();
  const { b } = await conflicting(sb);
  const push = await b.run(["push"]);
  const pushLine = expectCode(push, 4, "push conflict").stderr;
  assert.match(pushLine, /"modelsync pull --ours vpc\/m1", then "modelsync push vpc\/m1"/);

  const res = await b.run(["pull", "--json"]);
  expectCode(res, 4, "pull conflict");
  const row = rowOf(expectJson(res, "modelsync.pull/1"), "vpc/m1");
  assert.equal(row?.status, "conflict", describe(res));
  assert.deepEqual(row?.conflicts, ["d/x.txt", "w.txt"]);
  assert.equal(row?.saved?.side, "theirs");
  assert.deepEqual(row?.saved?.paths, ["d/x.txt", "w.txt"]);
  assert.match(
    row?.saved?.dir ?? "",
    /^\.modelsync\/conflicts\/vpc\/m1\/\d{8}T\d{6}\.\d{3}Z-gen2-theirs$/,
  );
  assert.deepEqual(await contents(b.path(row!.saved!.dir)), {
    "d/x.txt": "x as a wants it\n",
    "w.txt": "w as a wants it\n",
  });
  const line = expectOneLineError(await b.run(["pull"]), 4, "pull conflict (text)");
  assert.ok(line.includes(".modelsync/conflicts/vpc/m1/"), line);
  assert.ok(line.includes(`"modelsync pull --ours vpc/m1", then "modelsync push vpc/m1"`), line);
  assert.ok(line.includes(`"modelsync pull --theirs vpc/m1"`), line);
  // Nothing was changed locally, and the second conflict did not overwrite the first.
  assert.deepEqual(await contents(b.modelDir("vpc/m1")), {
    "d/x.txt": "x as b wants it\n",
    "w.txt": "w as b wants it\n",
    "y.txt": "y base\n",
  });
  const saved = await savedCopies(b, "vpc/m1");
  assert.equal(Object.keys(saved).length, 4, JSON.stringify(saved));
  assert.equal(new Set(Object.keys(saved).map((k) => k.split("/")[0])).size, 2, "two saves");

  // The CI remedy works: keep ours, then push. The datastore's version is saved again.
  const ours = expectCode(await b.run(["pull", "--ours", "--json"]), 0, "pull --ours");
  const or = rowOf(expectJson(ours, "modelsync.pull/1"), "vpc/m1");
  assert.equal(or?.status, "pulled", describe(ours));
  assert.equal(or?.saved?.side, "theirs");
  assert.deepEqual(or?.saved?.paths, ["d/x.txt", "w.txt"]);
  assert.equal(await b.read("models/vpc/m1/w.txt"), "w as b wants it\n");
  assert.equal(await b.read("models/vpc/m1/y.txt"), "y changed by a only\n", "a's other change");
  const text = await b.run(["pull", "--ours"]);
  expectCode(text, 0);
  const pushed = expectCode(await b.run(["push", "--json"]), 0, "push after --ours");
  assert.equal(rowOf(expectJson(pushed, "modelsync.push/1"), "vpc/m1")?.generation, 3);
  const head = await sb.datastore.current("vpc/m1");
  assert.deepEqual(head?.files.map((f) => f.path), ["d/x.txt", "w.txt", "y.txt"]);
  assert.equal(Object.keys(await savedCopies(b, "vpc/m1")).length, 6, "saved copies stay");
});

Deno.test("pull --theirs saves the local version before replacing it; saved copies are never synced", async () => {
  await using sb = await Sandbox.create();
  const { a, b } = await conflicting(sb);
  const res = expectCode(await b.run(["pull", "--theirs", "--json"]), 0, "pull --theirs");
  const doc = expectJson(res, "modelsync.pull/1");
  const row = rowOf(doc, "vpc/m1");
  assert.equal(row?.status, "pulled", describe(res));
  assert.deepEqual(row?.conflicts, ["d/x.txt", "w.txt"]);
  assert.equal(row?.saved?.side, "ours");
  assert.deepEqual(row?.saved?.paths, ["d/x.txt", "w.txt"]);
  assert.match(row?.saved?.dir ?? "", /-gen2-ours$/);
  assert.equal(summaryOf(doc).pulled, 1);
  assert.deepEqual(await contents(b.path(row!.saved!.dir)), {
    "d/x.txt": "x as b wants it\n",
    "w.txt": "w as b wants it\n",
  });
  assert.deepEqual(await contents(b.modelDir("vpc/m1")), await contents(a.modelDir("vpc/m1")));

  // The text report lists where; push and flush have nothing to send.
  await a.write("models/vpc/m1/w.txt", "w, third\n");
  expectCode(await a.run(["push"]), 0);
  await b.write("models/vpc/m1/w.txt", "w, b again\n");
  const text = expectCode(await b.run(["pull", "--theirs"]), 0, "pull --theirs (text)");
  assert.match(text.stdout, /saved your version of w\.txt in \.modelsync\/conflicts\/vpc\/m1\//);
  const flush = expectJson(expectCode(await b.run(["flush", "--json"]), 0), "modelsync.flush/1");
  assert.equal(rowOf(flush, "vpc/m1")?.status, "unchanged", JSON.stringify(flush));
  for (const { manifest } of await sb.datastore.manifests()) {
    for (const f of manifest.files) assert.doesNotMatch(f.path, /\.modelsync|conflicts/);
  }
  assert.equal(Object.keys(await savedCopies(b, "vpc/m1")).length, 3);
});
