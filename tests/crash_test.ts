/**
 * End-to-end crashes: a push or a pull killed with SIGKILL part-way. The
 * datastore never names a missing blob, the rerun completes, and the other
 * repository gets every byte.
 */
import assert from "node:assert/strict";
import {
  describe,
  expectCode,
  expectJson,
  expectOneLineError,
  listFiles,
  pseudoRandomBytes,
  type Repo,
  reportByModel,
  Sandbox,
  sha256,
  slowStore,
  waitFor,
  writeModelFiles,
} from "./_helpers.ts";

/** Asserts `repo` holds exactly `files` under `model`, byte for byte. */
async function assertSameFiles(
  repo: Repo,
  model: string,
  files: Map<string, Uint8Array>,
): Promise<void> {
  assert.deepEqual(await repo.modelFiles(model), [...files.keys()].sort());
  for (const [rel, want] of files) {
    const got = await repo.readBytes(`models/${model}/${rel}`);
    assert.equal(got.length, want.length, `${rel}: size`);
    assert.equal(sha256(got), sha256(want), `${rel}: content`);
  }
}

Deno.test("a push killed part-way: the rerun completes, manifests name only stored blobs, the other repo pulls every byte", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: these tests name single blobs
  const b = await sb.repo("b");
  await b.noPacks(); // a blob per file: these tests name single blobs
  // A first generation, so the kill lands on top of an existing manifest.
  await a.write("models/vpc/m1/readme.txt", "generation one\n");
  expectCode(await a.run(["push"]), 0, "first push");

  const files = await writeModelFiles(a, "vpc/m1", { count: 12, size: 4096, seed: 11 });
  files.set("readme.txt", new TextEncoder().encode("generation one\n"));
  const large = pseudoRandomBytes(600 * 1024, 5);
  await a.write("models/vpc/m1/nested/large.bin", large);
  files.set("nested/large.bin", large);
  await writeModelFiles(a, "vpc/m2", { count: 4, size: 1000, seed: 12 });

  const blobsBefore = (await sb.datastore.blobs()).length;
  const decorated = slowStore(sb, { putBlob: 250 });
  const slow = a.spawn(["push", "--jobs", "1", ...decorated.args], { env: decorated.env });
  await waitFor("some new blobs stored", async () => {
    if (slow.exited) throw new Error(`push ended before the kill\n${describe(await slow.done)}`);
    return (await sb.datastore.blobs()).length >= blobsBefore + 3;
  });
  await slow.killAndWait();

  // Right after the kill: whatever is committed names only stored blobs.
  assert.deepEqual(await sb.datastore.integrityProblems(), [], "after the kill");
  const m1 = await sb.datastore.current("vpc/m1");
  assert.ok(m1 !== null && m1.files.length >= 1, "generation 1 is still there");
  if (m1.generation === 1) assert.deepEqual(m1.files.map((f) => f.path), ["readme.txt"]);

  const rerun = expectCode(await a.run(["push", "--json"]), 0, "rerun after the kill");
  const report = reportByModel(expectJson(rerun, "modelsync.push/1"));
  assert.equal(report.get("vpc/m1")?.status, "pushed", describe(rerun));
  assert.equal(report.get("vpc/m2")?.status, "pushed", describe(rerun));
  assert.deepEqual(await sb.datastore.integrityProblems(), [], "after the rerun");
  for (const { file, manifest } of await sb.datastore.manifests()) {
    for (const f of manifest.files) {
      const blob = f.link !== undefined ? undefined : f.pack?.blob ?? f.sha256;
      if (blob !== undefined) {
        assert.ok((await sb.datastore.blobs()).includes(blob), `${file}: ${f.path}`);
      }
    }
  }
  assert.equal((await sb.datastore.current("vpc/m1"))?.files.length, files.size);
  // Nothing left pending: a second push has nothing to do.
  const noop = reportByModel(
    expectJson(expectCode(await a.run(["push", "--json"]), 0), "modelsync.push/1"),
  );
  for (const m of noop.values()) assert.equal(m.status, "unchanged");

  const pull = expectCode(await b.run(["pull", "--json"]), 0, "pull in the other repo");
  expectJson(pull, "modelsync.pull/1");
  await assertSameFiles(b, "vpc/m1", files);
  assert.equal((await b.modelFiles("vpc/m2")).length, 4);
  for (const rel of await b.modelFiles("vpc/m2")) {
    assert.equal(
      sha256(await b.readBytes(`models/vpc/m2/${rel}`)),
      sha256(await a.readBytes(`models/vpc/m2/${rel}`)),
      rel,
    );
  }
});

Deno.test("a pull killed part-way leaves no half-written file; the rerun completes", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: these tests name single blobs
  const b = await sb.repo("b");
  await b.noPacks(); // a blob per file: these tests name single blobs
  const files = await writeModelFiles(a, "vpc/m1", { count: 10, size: 8192, seed: 21 });
  expectCode(await a.run(["push"]), 0, "push");
  await b.write("models/vpc/m1/local.txt", "b's local file\n");

  const decorated = slowStore(sb, { getBlob: 250 });
  const slow = b.spawn(["pull", "--jobs", "1", ...decorated.args], { env: decorated.env });
  // Downloads go to .modelsync/tmp first: kill while some are there and others are not.
  await waitFor("some downloads in progress", async () => {
    if (slow.exited) throw new Error(`pull ended before the kill\n${describe(await slow.done)}`);
    return (await listFiles(b.path(".modelsync/tmp"))).length >= 3;
  });
  const killed = await slow.killAndWait();
  assert.equal(killed.signal, "SIGKILL", `the pull was killed part-way\n${describe(killed)}`);

  // Every file that landed is complete, and b's own file is untouched.
  assert.equal(await b.read("models/vpc/m1/local.txt"), "b's local file\n");
  for (const rel of await b.modelFiles("vpc/m1")) {
    if (rel === "local.txt") continue;
    const want = files.get(rel);
    assert.ok(want, `unexpected file ${rel}`);
    assert.equal(sha256(await b.readBytes(`models/vpc/m1/${rel}`)), sha256(want), rel);
  }

  const rerun = expectCode(await b.run(["pull", "--json"]), 0, "pull rerun");
  const r = reportByModel(expectJson(rerun, "modelsync.pull/1")).get("vpc/m1");
  assert.equal(r?.status, "pulled", describe(rerun));
  assert.equal(r?.generation, 1);
  const all = new Map(files);
  all.set("local.txt", new TextEncoder().encode("b's local file\n"));
  await assertSameFiles(b, "vpc/m1", all);
  // Temporary downloads are cleaned up or at least not inside the model.
  assert.deepEqual(
    (await listFiles(b.modelDir("vpc/m1"))).filter((p) => !all.has(p)),
    [],
  );
  const st = expectJson(expectCode(await b.run(["status", "--json"]), 0), "modelsync.status/1");
  const m = (st.models as { model: string; local: Record<string, string[]>; base: number }[])
    .find((x) => x.model === "vpc/m1");
  assert.deepEqual(m?.local, { added: ["local.txt"], modified: [], deleted: [] });
  assert.equal(m?.base, 1);
});

Deno.test("a pull killed while files land, then another push: the rerun completes without false conflicts", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: these tests name single blobs
  const b = await sb.repo("b");
  await b.noPacks(); // a blob per file: these tests name single blobs
  await writeModelFiles(a, "vpc/m1", { count: 10, size: 2048, seed: 31 });
  expectCode(await a.run(["push"]), 0, "push generation 1");
  expectCode(await b.run(["pull"]), 0, "b pulls generation 1");
  const gen2 = await writeModelFiles(a, "vpc/m1", { count: 10, size: 2048, seed: 32 });
  expectCode(await a.run(["push"]), 0, "push generation 2");

  // Each file waits 150 ms before it is renamed into place.
  const decorated = slowStore(sb, { land: 150 });
  const slow = b.spawn(["pull", "--jobs", "1", ...decorated.args], { env: decorated.env });
  await waitFor("some generation-2 files landed in b", async () => {
    if (slow.exited) throw new Error(`pull ended before the kill\n${describe(await slow.done)}`);
    let landed = 0;
    for (const [rel, want] of gen2) {
      const got = await b.readBytes(`models/vpc/m1/${rel}`).catch(() => new Uint8Array());
      if (sha256(got) === sha256(want)) landed++;
    }
    return landed >= 3;
  });
  await slow.killAndWait();
  const landedEarly = (await Promise.all(
    [...gen2].map(async ([rel, want]) =>
      sha256(await b.readBytes(`models/vpc/m1/${rel}`)) === sha256(want)
    ),
  )).filter(Boolean).length;
  assert.ok(landedEarly >= 3 && landedEarly < 10, `killed part-way (${landedEarly} of 10 landed)`);
  // The files modelsync landed are not the user's edits.
  const afterKill = expectJson(
    expectCode(await b.run(["status", "--json"]), 0),
    "modelsync.status/1",
  );
  const mk = (afterKill.models as { model: string; local: Record<string, string[]> }[])
    .find((x) => x.model === "vpc/m1");
  assert.deepEqual(mk?.local, { added: [], modified: [], deleted: [] }, "status after the kill");

  // Another writer moves every file on before b reruns.
  const gen3 = await writeModelFiles(a, "vpc/m1", { count: 10, size: 2048, seed: 33 });
  expectCode(await a.run(["push"]), 0, "push generation 3");
  const rerun = expectCode(await b.run(["pull", "--json"]), 0, "the rerun completes");
  const r = reportByModel(expectJson(rerun, "modelsync.pull/1")).get("vpc/m1");
  assert.equal(r?.status, "pulled", describe(rerun));
  assert.equal(r?.generation, 3);
  await assertSameFiles(b, "vpc/m1", gen3);
  const st = expectJson(expectCode(await b.run(["status", "--json"]), 0), "modelsync.status/1");
  const m = (st.models as { model: string; local: Record<string, string[]> }[]).find((x) =>
    x.model === "vpc/m1"
  );
  assert.deepEqual(m?.local, { added: [], modified: [], deleted: [] });
  assert.deepEqual(
    await listFiles(b.path(".modelsync/landing")),
    [],
    "the landing journal is gone",
  );
});

Deno.test("a user edit made while a pull lands files is never overwritten", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: these tests name single blobs
  const b = await sb.repo("b");
  await b.noPacks(); // a blob per file: these tests name single blobs
  await writeModelFiles(a, "vpc/m1", { count: 6, size: 1024, seed: 41 });
  expectCode(await a.run(["push"]), 0, "push generation 1");
  expectCode(await b.run(["pull"]), 0, "b pulls generation 1");
  const gen2 = await writeModelFiles(a, "vpc/m1", { count: 6, size: 1024, seed: 42 });
  expectCode(await a.run(["push"]), 0, "push generation 2");

  const decorated = slowStore(sb, { land: 200 });
  const slow = b.spawn(["pull", "--jobs", "1", ...decorated.args], { env: decorated.env });
  await waitFor("the first file landed", async () => {
    if (slow.exited) throw new Error(`pull ended too early\n${describe(await slow.done)}`);
    return sha256(await b.readBytes("models/vpc/m1/part-000.bin")) ===
      sha256(gen2.get("part-000.bin")!);
  });
  await b.write("models/vpc/m1/part-005.bin", "the user's edit\n");
  const res = await slow.done;
  expectOneLineError(res, 4, "pull that met a user edit");
  assert.match(res.stderr, /part-005\.bin/);
  assert.equal(await b.read("models/vpc/m1/part-005.bin"), "the user's edit\n", "the edit is kept");

  // The rerun lands the rest and reports the edited file as the one conflict.
  const rerun = await b.run(["pull", "--json"]);
  expectCode(rerun, 4, "rerun");
  assert.deepEqual(reportByModel(expectJson(rerun, "modelsync.pull/1")).get("vpc/m1")?.conflicts, [
    "part-005.bin",
  ]);
  assert.equal(await b.read("models/vpc/m1/part-005.bin"), "the user's edit\n");
});

Deno.test("files changed while a push uploads them never commit a mismatched blob; a rerun sends the new content", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: these tests name single blobs
  const b = await sb.repo("b");
  await b.noPacks(); // a blob per file: these tests name single blobs
  const files = await writeModelFiles(a, "vpc/m1", { count: 8, size: 1000, seed: 31 });
  const decorated = slowStore(sb, { putBlob: 300 });
  const slow = a.spawn(["push", "--jobs", "1", ...decorated.args], { env: decorated.env });
  await waitFor("the first blob stored", async () => {
    if (slow.exited) throw new Error(`push ended early\n${describe(await slow.done)}`);
    return (await sb.datastore.blobs()).length >= 1;
  });
  // Rewrite every file with new content of another size while the push runs.
  const changed = new Map<string, Uint8Array>();
  for (const rel of files.keys()) {
    const bytes = pseudoRandomBytes(1500, rel.length * 7919 + changed.size + 1);
    await a.write(`models/vpc/m1/${rel}`, bytes);
    changed.set(rel, bytes);
  }
  const res = await slow.done;
  assert.ok(res.code === 0 || res.code === 4, `push exits 0 or 4\n${describe(res)}`);
  assert.deepEqual(await sb.datastore.integrityProblems(), [], "no manifest names a bad blob");
  for (const [rel, bytes] of changed) {
    assert.equal(
      sha256(await a.readBytes(`models/vpc/m1/${rel}`)),
      sha256(bytes),
      "push keeps local files",
    );
  }

  const rerun = await a.run(["push", "--json"]);
  expectCode(rerun, 0, "rerun once the files settled");
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
  expectCode(await b.run(["pull"]), 0, "pull");
  await assertSameFiles(b, "vpc/m1", changed);
});
