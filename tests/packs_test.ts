/**
 * Packs end to end (design/format.md, "Packs"): small files pushed into one
 * pack blob, large ones as blobs of their own; pull lands every byte
 * hash-checked (by ranged reads on S3 and the filesystem); unchanged files
 * keep their place; gc keeps a pack any kept generation names; a corrupt
 * pack is refused and reported; a lost pack is repaired by a push of the
 * model; on S3 a first push of many small files costs a few requests per
 * model.
 */
import assert from "node:assert/strict";
import { expectCode, expectJson, type Repo, Sandbox, sha256, writeModelFiles } from "./_helpers.ts";
import { S3Sandbox, s3TestOptions } from "./_s3.ts";

async function assertSameFiles(repo: Repo, model: string, files: Map<string, Uint8Array>) {
  assert.deepEqual((await repo.modelFiles(model)).sort(), [...files.keys()].sort());
  for (const [rel, bytes] of files) {
    assert.equal(sha256(await repo.readBytes(`models/${model}/${rel}`)), sha256(bytes), rel);
  }
}

function verifyProblems(res: { stdout: string }): { problem: string; path: string | null }[] {
  return (JSON.parse(res.stdout) as { problems: { problem: string; path: string | null }[] })
    .problems;
}

/** A model of 30 small files, an empty one and one of 600 KiB (above the pack limit). */
async function writeMixedModel(repo: Repo, model: string, seed: number) {
  const files = await writeModelFiles(repo, model, { count: 30, size: 1000, seed });
  const large = new Uint8Array(600 * 1024).map((_, i) => (i * 31 + seed) % 251);
  await repo.write(`models/${model}/large.bin`, large);
  files.set("large.bin", large);
  await repo.write(`models/${model}/empty`, "");
  files.set("empty", new Uint8Array());
  return files;
}

Deno.test("packs: small files go into one pack, large and empty ones stay blobs; pull lands every byte; verify --read-data is clean", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  const files = await writeMixedModel(a, "vpc/m1", 3);
  expectCode(await a.run(["push"]), 0, "push");
  const m = (await sb.datastore.current("vpc/m1"))!;
  const packed = m.files.filter((f) => f.pack !== undefined);
  assert.equal(packed.length, 30, "every small file is packed");
  assert.equal(new Set(packed.map((f) => f.pack!.blob)).size, 1, "in one pack");
  assert.equal(new Set(packed.map((f) => f.pack!.offset)).size, 30, "each at its own offset");
  const own = m.files.filter((f) => f.pack === undefined).map((f) => f.path).sort();
  assert.deepEqual(own, ["empty", "large.bin"]);
  assert.deepEqual(
    (await sb.datastore.blobs()).sort(),
    [packed[0].pack!.blob, sha256(files.get("large.bin")!), sha256("")].sort(),
    "three blobs: the pack, the large file, the empty file",
  );
  assert.deepEqual(await sb.datastore.integrityProblems(), []);

  expectCode(await b.run(["pull"]), 0, "pull");
  await assertSameFiles(b, "vpc/m1", files);
  const verify = expectCode(await b.run(["verify", "--read-data", "--json"]), 0, "verify");
  assert.deepEqual(verifyProblems(verify), []);
});

Deno.test("packs: a change keeps unchanged files where they are; gc keeps a pack while a kept generation names part of it", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const files = await writeModelFiles(a, "vpc/m1", { count: 20, size: 500, seed: 5 });
  expectCode(await a.run(["push"]), 0, "push 1");
  const first = (await sb.datastore.current("vpc/m1"))!;
  const firstPack = first.files[0].pack!.blob;

  const [changed] = [...files.keys()];
  const bytes = new TextEncoder().encode("new content\n");
  await a.write(`models/vpc/m1/${changed}`, bytes);
  files.set(changed, bytes);
  const push2 = expectJson(
    expectCode(await a.run(["push", "--json"]), 0, "push 2"),
    "modelsync.push/1",
  );
  assert.equal((push2.models as { uploaded: number }[])[0].uploaded, 1, JSON.stringify(push2));
  const second = (await sb.datastore.current("vpc/m1"))!;
  for (const f of second.files) {
    if (f.path === changed) assert.notEqual(f.pack?.blob, firstPack, "the new content: a new pack");
    else assert.deepEqual(f.pack, first.files.find((g) => g.path === f.path)!.pack, f.path);
  }

  // Only the newest generation kept: the first pack still holds 19 of its files.
  expectCode(await a.run(["gc", "--keep", "1", "--grace", "0s"]), 0, "gc");
  assert.ok((await sb.datastore.blobs()).includes(firstPack), "the first pack is kept");
  const c = await sb.repo("c");
  expectCode(await c.run(["pull"]), 0, "pull after gc");
  await assertSameFiles(c, "vpc/m1", files);
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
});

Deno.test("packs: a corrupt pack is refused (exit 6, nothing written) and verify --read-data names it; a lost pack is repaired by pushing the model", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const files = await writeModelFiles(a, "vpc/m1", { count: 10, size: 800, seed: 9 });
  expectCode(await a.run(["push"]), 0, "push");
  const pack = (await sb.datastore.current("vpc/m1"))!.files[0].pack!.blob;
  const path = sb.datastore.blobPath(pack);
  const good = await Deno.readFile(path);
  const bad = good.slice();
  bad[100] ^= 0xff; // inside the first file's bytes
  await Deno.chmod(path, 0o644);
  await Deno.writeFile(path, bad);

  const b = await sb.repo("b");
  const pull = expectCode(await b.run(["pull"]), 6, "pull of a corrupt pack");
  assert.match(pull.stderr, /corrupt/);
  assert.deepEqual(await b.modelFiles("vpc/m1"), [], "nothing was written");
  const v = expectCode(await b.run(["verify", "--read-data", "--json"]), 6, "verify");
  assert.deepEqual([...new Set(verifyProblems(v).map((p) => p.problem))], ["corrupt-blob"]);

  // The pack is lost: verify says so for each file; a push of the model stores them again.
  await Deno.remove(path);
  const lost = verifyProblems(expectCode(await b.run(["verify", "--json"]), 6, "verify lost"));
  assert.equal(lost.length, 10);
  assert.ok(lost.every((p) => p.problem === "missing-blob"));
  const repair = expectJson(
    expectCode(await a.run(["push", "vpc/m1", "--json"]), 0, "push repairs"),
    "modelsync.push/1",
  );
  assert.equal((repair.models as { uploaded: number }[])[0].uploaded, 10, JSON.stringify(repair));
  expectCode(await b.run(["verify", "--read-data"]), 0, "verify after the repair");
  expectCode(await b.run(["pull"]), 0, "pull after the repair");
  await assertSameFiles(b, "vpc/m1", files);
});

Deno.test({
  name:
    "S3 packs: a first push of 2 models × 200 small files stores one pack each (a few requests per model); pull by ranged reads lands every byte",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-packs", { proxy: true });
    const proxy = s3.proxy!;
    const a = await s3.sb.repo("a");
    const b = await s3.sb.repo("b");
    const m1 = await writeModelFiles(a, "vpc/m1", { count: 200, size: 1024, seed: 1 });
    const m2 = await writeModelFiles(a, "vpc/m2", { count: 200, size: 1024, seed: 2 });
    proxy.reset();
    expectCode(await a.run(["push"]), 0, "first push");
    // One line per request: "METHOD STATUS PATH?QUERY".
    const puts = proxy.summary().split("\n").filter((l) => /^PUT \d+ \S*\/blobs\//.test(l));
    assert.equal(puts.length, 2, `one blob PUT per model:\n${proxy.summary()}`);
    assert.ok(proxy.count <= 2 * 12, `${proxy.count} requests for 2 models:\n${proxy.summary()}`);

    proxy.reset();
    expectCode(await b.run(["pull"]), 0, "pull");
    await assertSameFiles(b, "vpc/m1", m1);
    await assertSameFiles(b, "vpc/m2", m2);
    const gets = proxy.summary().split("\n").filter((l) => /^GET \d+ \S*\/blobs\//.test(l));
    assert.ok(gets.length > 0 && gets.length <= 2, `one read per pack:\n${proxy.summary()}`);
    expectCode(await b.run(["verify", "--read-data"]), 0, "verify");
  },
});

Deno.test("packs: gc rewrites a pack that is mostly garbage: its live files become blobs of their own, the pack goes, every kept generation still reads", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const files = await writeModelFiles(a, "vpc/m1", { count: 20, size: 1000, seed: 21 });
  expectCode(await a.run(["push"]), 0, "push 1");
  const pack = (await sb.datastore.current("vpc/m1"))!.files[0].pack!.blob;
  // Generation 2 keeps 3 of the 20 files: the first pack is mostly garbage once generation 1 goes.
  const keep = [...files.keys()].slice(0, 3);
  for (const rel of [...files.keys()].slice(3)) {
    await Deno.remove(a.path(`models/vpc/m1/${rel}`));
    files.delete(rel);
  }
  expectCode(await a.run(["push", "vpc/m1"]), 0, "push 2");
  const dry = expectCode(await a.run(["gc", "--keep", "1", "--grace", "0s", "--dry-run"]), 0);
  assert.match(dry.stdout, new RegExp(`would rewrite pack ${pack}`));
  assert.ok((await sb.datastore.blobs()).includes(pack), "a dry run changes nothing");

  const gc = expectJson(
    expectCode(await a.run(["gc", "--keep", "1", "--grace", "0s", "--json"]), 0, "gc"),
    "modelsync.gc/1",
  );
  assert.deepEqual((gc.packs as { hash: string }[]).map((p) => p.hash), [pack]);
  const blobs = await sb.datastore.blobs();
  assert.ok(!blobs.includes(pack), "the pack is gone");
  for (const rel of keep) assert.ok(blobs.includes(sha256(files.get(rel)!)), `${rel}: own blob`);
  assert.deepEqual(await sb.datastore.integrityProblems(), []);

  const b = await sb.repo("b");
  expectCode(await b.run(["pull"]), 0, "pull after the rewrite");
  await assertSameFiles(b, "vpc/m1", files);
  expectCode(await b.run(["verify", "--read-data"]), 0, "verify after the rewrite");
  // The next push of a change packs the model's content anew (its head names the old pack).
  await a.write("models/vpc/m1/new.txt", "new\n");
  expectCode(await a.run(["push"]), 0, "push 3");
  const head = (await sb.datastore.current("vpc/m1"))!;
  assert.ok(head.files.every((f) => f.pack !== undefined && f.pack.blob !== pack), "repacked");
  const c = await sb.repo("c");
  expectCode(await c.run(["pull"]), 0, "pull");
  files.set("new.txt", new TextEncoder().encode("new\n"));
  await assertSameFiles(c, "vpc/m1", files);
});

Deno.test("packs: a push of thousands of small files builds its packs on worker threads; pull lands every byte and verify --read-data is clean", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  // Over PackWorkers' threshold (2,000 changed files in a run), in 3 models.
  const models = ["fleet/w1", "fleet/w2", "fleet/w3"];
  const files = new Map<string, Map<string, Uint8Array>>();
  for (const [i, model] of models.entries()) {
    files.set(model, await writeModelFiles(a, model, { count: 700, size: 300, seed: 40 + i }));
  }
  expectCode(await a.run(["push"]), 0, "push");
  for (const model of models) {
    const m = (await sb.datastore.current(model))!;
    assert.equal(m.files.filter((f) => f.pack !== undefined).length, 700, `${model}: packed`);
  }
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
  expectCode(await b.run(["pull"]), 0, "pull");
  for (const model of models) await assertSameFiles(b, model, files.get(model)!);
  const verify = expectCode(await b.run(["verify", "--read-data", "--json"]), 0, "verify");
  assert.deepEqual(verifyProblems(verify), []);
});
