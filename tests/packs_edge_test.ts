/**
 * Packs at their edges (design/format.md, "Packs"): a lost pack under a
 * changed model, a restore that needs a lost pack's content, a pack whose
 * hash is also some file's content hash.
 */
import assert from "node:assert/strict";
import { expectCode, expectJson, Sandbox, sha256, writeModelFiles } from "./_helpers.ts";

function verifyProblems(res: { stdout: string }): { problem: string; path: string | null }[] {
  return (JSON.parse(res.stdout) as { problems: { problem: string; path: string | null }[] })
    .problems;
}

Deno.test("packs: a push of a changed model whose head names a lost pack stores that content again (invariant 1)", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await writeModelFiles(a, "vpc/m1", { count: 10, size: 700, seed: 11 });
  expectCode(await a.run(["push"]), 0, "push 1");
  const pack = (await sb.datastore.current("vpc/m1"))!.files[0].pack!.blob;
  await Deno.remove(sb.datastore.blobPath(pack));

  // A change to the model: the nine unchanged files are still here, so the
  // commit must not name content the datastore no longer has.
  await a.write("models/vpc/m1/new.txt", "a new file\n");
  expectCode(await a.run(["push"]), 0, "push 2");
  const head = (await sb.datastore.current("vpc/m1"))!;
  assert.equal(head.files.length, 11);
  const problems = (await sb.datastore.integrityProblems())
    .filter((p) => p.includes(`-${head.commit}`));
  assert.deepEqual(problems, [], "the new head names only stored content");
  const b = await sb.repo("b");
  expectCode(await b.run(["pull"]), 0, "pull of the new head");
});

Deno.test("packs: a push that rebases onto a head naming a lost pack stores that content again", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  await writeModelFiles(a, "vpc/m1", { count: 10, size: 700, seed: 12 });
  expectCode(await a.run(["push"]), 0, "push 1");
  const pack = (await sb.datastore.current("vpc/m1"))!.files[0].pack!.blob;
  expectCode(await b.run(["pull"]), 0, "pull");
  await b.write("models/vpc/m1/from-b.txt", "b's file\n");
  expectCode(await b.run(["push"]), 0, "push 2 (b)");
  await Deno.remove(sb.datastore.blobPath(pack));

  // a's push rebases: its unchanged files come from the head, which names the lost pack.
  await a.write("models/vpc/m1/from-a.txt", "a's file\n");
  const push = expectJson(
    expectCode(await a.run(["push", "--json"]), 0, "push 3"),
    "modelsync.push/1",
  );
  assert.equal((push.models as { rebased?: boolean }[])[0].rebased, true, JSON.stringify(push));
  const head = (await sb.datastore.current("vpc/m1"))!;
  assert.equal(head.files.length, 12);
  assert.ok(head.files.every((f) => f.pack?.blob !== pack), "no file names the lost pack");
  const c = await sb.repo("c");
  expectCode(await c.run(["pull"]), 0, "pull of the new head");
  const v = expectCode(await c.run(["verify", "vpc/m1", "--json"]), 6, "verify: gen 1-2 lack it");
  assert.ok(verifyProblems(v).every((p) => p.problem === "missing-blob"));
});

Deno.test("packs: restore of a generation whose pack is lost reads its files' own blobs (the repair push stores them)", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const files = await writeModelFiles(a, "vpc/m1", { count: 6, size: 900, seed: 13 });
  expectCode(await a.run(["push"]), 0, "push 1");
  const pack = (await sb.datastore.current("vpc/m1"))!.files[0].pack!.blob;
  await a.write("models/vpc/m1/extra.txt", "generation 2\n");
  expectCode(await a.run(["push"]), 0, "push 2");
  await Deno.remove(sb.datastore.blobPath(pack));
  // The remedy verify names: a push of the model stores the lost pack's content as blobs.
  expectCode(await a.run(["push", "vpc/m1"]), 0, "repair push");
  expectCode(await a.run(["verify", "vpc/m1"]), 0, "verify after the repair");

  const b = await sb.repo("b");
  expectCode(await b.run(["pull"]), 0, "pull (falls back to the own blobs)");
  // A file to bring back from generation 1, whose pack is gone.
  await Deno.remove(b.path("models/vpc/m1/part-000.bin"));
  const restore = await b.run(["restore", "vpc/m1@1"]);
  expectCode(restore, 0, "restore of generation 1");
  assert.deepEqual((await b.modelFiles("vpc/m1")).sort(), [...files.keys()].sort());
});

Deno.test("packs: a file whose content is a pack's bytes (the same blob) verifies clean, and missing, is reported missing", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await writeModelFiles(a, "vpc/m1", { count: 5, size: 120_000, seed: 14 });
  expectCode(await a.run(["push"]), 0, "push m1");
  const pack = (await sb.datastore.current("vpc/m1"))!.files[0].pack!.blob;
  // A copy of the pack (over 512 KiB, so not packed itself) as a file of another
  // model: its content hash is the pack's, and the pack is its blob.
  await a.write("models/vpc/m2/copy.bin", await Deno.readFile(sb.datastore.blobPath(pack)));
  expectCode(await a.run(["push"]), 0, "push m2");
  const copy = (await sb.datastore.current("vpc/m2"))!.files[0];
  assert.deepEqual([copy.sha256, copy.pack], [pack, undefined]);

  const v = await a.run(["verify", "--read-data", "--json"]);
  assert.deepEqual(verifyProblems(v), [], v.stdout);
  expectCode(v, 0, "verify --read-data");

  await Deno.remove(sb.datastore.blobPath(pack));
  const lost = expectCode(await a.run(["verify", "--json"]), 6, "verify of the lost blob");
  const problems = verifyProblems(lost);
  assert.equal(problems.length, 6, lost.stdout);
  assert.ok(problems.every((p) => p.problem === "missing-blob"));
});

Deno.test("packs: after packSmallFiles: false, a push stores the files it has as blobs of their own, so the head names no pack", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const files = await writeModelFiles(a, "vpc/m1", { count: 8, size: 500, seed: 15 });
  expectCode(await a.run(["push"]), 0, "push with packs");
  assert.ok((await sb.datastore.current("vpc/m1"))!.files.every((f) => f.pack !== undefined));

  // A release before packs shares the datastore from now on.
  await a.noPacks();
  await a.write("models/vpc/m1/part-000.bin", "changed\n");
  expectCode(await a.run(["push"]), 0, "push without packs");
  const head = (await sb.datastore.current("vpc/m1"))!;
  assert.deepEqual(head.files.filter((f) => f.pack !== undefined).map((f) => f.path), []);
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
  assert.equal(head.files.length, files.size);
});

Deno.test("packs: verify --read-data checks the blobs of their own that files of a lost pack are read from", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const files = await writeModelFiles(a, "vpc/m1", { count: 4, size: 900, seed: 16 });
  expectCode(await a.run(["push"]), 0, "push");
  const pack = (await sb.datastore.current("vpc/m1"))!.files[0].pack!.blob;
  await Deno.remove(sb.datastore.blobPath(pack));
  expectCode(await a.run(["push", "vpc/m1"]), 0, "repair push");
  // One of the blobs readers now fall back to is damaged.
  const own = sb.datastore.blobPath(sha256(files.get("part-001.bin")!));
  await Deno.chmod(own, 0o644);
  await Deno.writeFile(own, new TextEncoder().encode("not the content"));

  const b = await sb.repo("b");
  expectCode(await b.run(["pull"]), 6, "pull refuses the damaged blob");
  const v = expectCode(await b.run(["verify", "--read-data", "--json"]), 6, "verify --read-data");
  assert.deepEqual(
    verifyProblems(v).map((p) => [p.problem, p.path]),
    [["corrupt-blob", "part-001.bin"]],
  );
});

Deno.test("packs: push MODEL of an unchanged model behind the head uploads nothing and reports it unchanged", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  await writeModelFiles(a, "vpc/m1", { count: 8, size: 1000, seed: 17 });
  expectCode(await a.run(["push"]), 0, "push 1");
  expectCode(await b.run(["pull"]), 0, "pull");
  await b.write("models/vpc/m1/part-000.bin", "changed by b\n");
  expectCode(await b.run(["push"]), 0, "push 2 (b)");
  const blobs = (await sb.datastore.blobs()).sort();

  // a still holds generation 1, whose content is in the first pack.
  const push = expectJson(
    expectCode(await a.run(["push", "vpc/m1", "--json"]), 0, "push of a model behind"),
    "modelsync.push/1",
  );
  const row = (push.models as { status: string; uploaded: number }[])[0];
  assert.deepEqual([row.status, row.uploaded], ["unchanged", 0], JSON.stringify(push));
  assert.deepEqual((await sb.datastore.blobs()).sort(), blobs, "no blob was added");
});
