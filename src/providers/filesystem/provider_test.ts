import assert from "node:assert/strict";
import { join } from "node:path";
import { NotFoundError, UsageError } from "../../errors.ts";
import { filesystemProvider } from "./mod.ts";
import { hashBytes } from "../../model/hash.ts";
import type { ProviderContext } from "../../provider/contract.ts";
import { FilesystemProvider } from "./provider.ts";

const CTX: ProviderContext = { callTimeoutMs: 5_000, host: "h", pid: 1, baseDir: "/" };
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function store(): Promise<{ dir: string; p: FilesystemProvider } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "modelsync-fsp-" });
  const p = new FilesystemProvider(join(dir, "ds"), CTX);
  await p.init();
  return {
    dir: join(dir, "ds"),
    p,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

async function versions(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

Deno.test("open: a missing root is NotFound with the remedy, and is never recreated", async () => {
  const dir = await Deno.makeTempDir({ prefix: "modelsync-fsp-" });
  try {
    const p = new FilesystemProvider(join(dir, "gone"), CTX);
    const err = await p.open().catch((e) => e);
    assert.ok(err instanceof NotFoundError);
    assert.match(err.message, /does not exist: create it or run "modelsync init/);
    await assert.rejects(p.getRecord("config"), NotFoundError, "a vanished root reads as missing");
    await assert.rejects(p.listRecords("heads/"), NotFoundError);
    await assert.rejects(p.createRecord("heads/a/b", enc("x")).then(() => p.open()), NotFoundError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("records: each write is the next numbered version; older ones are removed", async () => {
  await using s = await store();
  const v1 = await s.p.createRecord("heads/vpc/m1", enc("one"));
  const v2 = await s.p.replaceRecord("heads/vpc/m1", enc("two"), v1!);
  assert.ok(v2 !== null);
  assert.deepEqual(await versions(join(s.dir, "heads/vpc/m1")), ["000000000002.json"]);
  assert.ok(await s.p.deleteRecord("heads/vpc/m1", v2));
  // A deletion is an empty version: the number never goes back.
  assert.deepEqual(await versions(join(s.dir, "heads/vpc/m1")), ["000000000003.json"]);
  assert.equal((await Deno.stat(join(s.dir, "heads/vpc/m1/000000000003.json"))).size, 0);
  const v4 = await s.p.createRecord("heads/vpc/m1", enc("again"));
  assert.ok(v4?.startsWith("4."));
  assert.deepEqual((await s.p.listRecords("heads/")).items.map((r) => r.key), ["heads/vpc/m1"]);
});

Deno.test("records: a stale writer whose number was cleaned up loses", async () => {
  await using s = await store();
  const v1 = await s.p.createRecord("locks/global", enc("a"));
  const v2 = await s.p.replaceRecord("locks/global", enc("b"), v1!);
  await s.p.replaceRecord("locks/global", enc("c"), v2!);
  // A writer that read version 1 long ago now tries to write version 2,
  // whose file the writer of version 3 removed: it must not win.
  const dir = join(s.dir, "locks/global");
  await Deno.writeTextFile(join(s.dir, "tmp", "stale"), "stale");
  await Deno.link(join(s.dir, "tmp", "stale"), join(dir, "000000000002.json"));
  assert.equal(dec((await s.p.getRecord("locks/global"))!.bytes), "c", "the highest version wins");
  assert.equal(await s.p.replaceRecord("locks/global", enc("x"), v1!), null);
  assert.equal(await s.p.replaceRecord("locks/global", enc("x"), v2!), null);
});

Deno.test("records: a plain file of format 1 reads as a one-version record", async () => {
  await using s = await store();
  await Deno.writeTextFile(join(s.dir, "modelsync.json"), '{"format": 1}\n');
  await Deno.mkdir(join(s.dir, "locks"), { recursive: true });
  await Deno.writeTextFile(join(s.dir, "locks/global.json"), "{}");
  const rec = await s.p.getRecord("modelsync.json");
  assert.equal(rec && dec(rec.bytes), '{"format": 1}\n');
  assert.equal(await s.p.createRecord("modelsync.json", enc("x")), null);
  const keys = (await s.p.listRecords("")).items.map((r) => r.key);
  assert.deepEqual(keys, ["locks/global.json", "modelsync.json"]);
  assert.ok(await s.p.deleteRecord("modelsync.json", rec!.version));
  assert.equal(await s.p.getRecord("modelsync.json"), null);
});

Deno.test("records: keys that leave the store or name its own folders are refused", async () => {
  await using s = await store();
  for (const key of ["../x", "a/../b", "blobs/x", "tmp/x", "/abs", "a//b", ".hidden"]) {
    await assert.rejects(s.p.createRecord(key, enc("x")), Error, key);
  }
});

Deno.test("blobs: ranged reads, listing by prefix pages and deletion", async () => {
  await using s = await store();
  const bytes = new Uint8Array(70_000).map((_, i) => (i * 7919) % 251);
  const h = hashBytes(bytes);
  await s.p.putBlob(h, { kind: "bytes", bytes });
  const part = new Uint8Array(
    await new Response(await s.p.getBlob(h, { range: { offset: 60_000, length: 20_000 } }))
      .arrayBuffer(),
  );
  assert.deepEqual(part, bytes.subarray(60_000), "a range past the end stops at the end");
  const page = await s.p.listBlobs();
  assert.deepEqual(page.items.map((b) => [b.hash, b.size]), [[h, 70_000]]);
  await s.p.deleteBlob(h);
  assert.equal((await s.p.hasBlobs([h])).size, 0);
  assert.deepEqual((await s.p.listBlobs()).items, []);
});

Deno.test("the module parses every filesystem spec form against the repository", () => {
  const parse = (spec: string, baseDir = "/repo") =>
    filesystemProvider.parseSpec!(spec, { baseDir });
  assert.deepEqual(parse("filesystem:/srv/m"), { path: "/srv/m" });
  assert.deepEqual(parse("fs:store"), { path: "/repo/store" });
  assert.deepEqual(parse("file:///srv/a%20b"), { path: "/srv/a b" });
  assert.deepEqual(parse("/abs/path"), { path: "/abs/path" });
  assert.deepEqual(parse("../up", "/repo/sub"), { path: "/repo/up" });
  for (const bad of ["filesystem:", "file://host/x", "file://%zz"]) {
    assert.throws(() => parse(bad), UsageError, bad);
  }
});
