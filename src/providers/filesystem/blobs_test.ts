import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ContentChangedError } from "../../errors.ts";
import { withTempDir } from "../../_with_temp_dir.ts";
import { isLocalDisk, TempFiles } from "./_fs.ts";
import { BlobStore } from "./blobs.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

for (const syncSmallIo of [false, true]) {
  Deno.test(`BlobStore (syncSmallIo ${syncSmallIo}): verified puts, nothing half-written`, async () => {
    await withTempDir(async (dir) => {
      const store = new BlobStore(join(dir, "blobs"), new TempFiles(join(dir, "tmp"), 1));
      store.syncSmallIo = syncSmallIo;
      const src = join(dir, "src");
      const bytes = new TextEncoder().encode("hello");
      await Deno.writeFile(src, bytes);
      const h = sha(bytes);
      assert.deepEqual(await store.has([h]), new Set());
      await store.put(h, { kind: "file", path: src, size: bytes.length });
      assert.deepEqual(await Deno.readFile(store.path(h)), bytes);
      assert.deepEqual(await store.has([h, "0".repeat(64)]), new Set([h]));

      // A file that changed (also to another size) since it was hashed is refused.
      await Deno.writeTextFile(src, "hello, world");
      const other = "1".repeat(64);
      await assert.rejects(
        store.put(other, { kind: "file", path: src, size: bytes.length }),
        ContentChangedError,
      );
      await assert.rejects(
        store.put(other, { kind: "file", path: join(dir, "gone"), size: 5 }),
        ContentChangedError,
      );
      assert.deepEqual(await store.has([other]), new Set());
      assert.deepEqual(await names(join(dir, "tmp")), []);

      // A prefix directory removed behind the store's back is created again.
      const grown = new TextEncoder().encode("hello, world");
      const g = sha(grown);
      await Deno.mkdir(join(dir, "blobs", g.slice(0, 2)), { recursive: true });
      await store.has([g]);
      await Deno.remove(join(dir, "blobs", g.slice(0, 2)), { recursive: true });
      // The size must be the one scanned: content read at another size is refused.
      await assert.rejects(store.put(g, { kind: "file", path: src, size: 5 }), ContentChangedError);
      await store.put(g, { kind: "file", path: src, size: grown.length });
      assert.deepEqual(await Deno.readFile(store.path(g)), grown);
      assert.deepEqual(await names(join(dir, "tmp")), []);
    });
  });
}

for (const syncSmallIo of [false, true]) {
  Deno.test(`BlobStore (syncSmallIo ${syncSmallIo}): get reads small, empty and large blobs whole, ranges, and names a missing one`, async () => {
    await withTempDir(async (dir) => {
      const store = new BlobStore(join(dir, "blobs"), new TempFiles(join(dir, "tmp"), 1));
      store.syncSmallIo = syncSmallIo;
      const read = async (s: ReadableStream<Uint8Array>) =>
        new Uint8Array(await new Response(s).arrayBuffer());
      for (const size of [0, 5, 64 * 1024, 64 * 1024 + 1, 700 * 1024]) {
        const bytes = new Uint8Array(size).map((_, i) => (i * 7) % 256);
        const src = join(dir, `src-${size}`);
        await Deno.writeFile(src, bytes);
        const h = sha(bytes);
        await store.put(h, { kind: "file", path: src, size });
        assert.deepEqual(await read(await store.get(h)), bytes, `size ${size}`);
        if (size > 10) {
          const part = await read(await store.get(h, { range: { offset: 3, length: 7 } }));
          assert.deepEqual(part, bytes.subarray(3, 10), `range of size ${size}`);
        }
      }
      const missing = "2".repeat(64);
      await assert.rejects(store.get(missing), (err: Error) => err.message.includes(missing));
    });
  });
}

Deno.test("isLocalDisk: a temp directory is local on Linux; /proc is not a disk", async () => {
  await withTempDir(async (dir) => {
    const local = await isLocalDisk(dir);
    assert.equal(typeof local, "boolean");
    assert.equal(await isLocalDisk("/proc"), false);
    assert.equal(await isLocalDisk(join(dir, "missing")), false);
  });
});

Deno.test("BlobStore: a large put reports its bytes as they are read (progress within a file)", async () => {
  await withTempDir(async (dir) => {
    const store = new BlobStore(join(dir, "blobs"), new TempFiles(join(dir, "tmp"), 1));
    const src = join(dir, "big");
    const bytes = new Uint8Array(6 * 1024 * 1024).map((_, i) => i % 251);
    await Deno.writeFile(src, bytes);
    const reads: number[] = [];
    await store.put(sha(bytes), {
      kind: "file",
      path: src,
      size: bytes.length,
      onRead: (n) => reads.push(n),
    });
    assert.ok(reads.length >= 6, `one report per chunk read, got ${reads.length}`);
    assert.equal(reads.reduce((a, b) => a + b, 0), bytes.length);
  });
});
