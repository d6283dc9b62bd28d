import assert from "node:assert/strict";
import { hashBytes } from "../model/hash.ts";
import { PackBuilder } from "../model/pack.ts";
import { PackWorkers } from "./pack_pool.ts";

async function files(dir: string, n: number) {
  const items = [];
  for (let i = 0; i < n; i++) {
    const bytes = new TextEncoder().encode(`file ${i}\n`.repeat(i + 1));
    const file = `${dir}/f${i}`;
    await Deno.writeFile(file, bytes);
    items.push({ sha256: hashBytes(bytes), size: bytes.length, file, bytes });
  }
  return items;
}

Deno.test({
  name: "PackWorkers: a worker builds the pack the main thread would, byte for byte",
  ignore: (navigator.hardwareConcurrency ?? 1) < 2,
  async fn() {
    const dir = await Deno.makeTempDir();
    const workers = PackWorkers.forFiles(10_000)!;
    try {
      const items = await files(dir, 20);
      // A duplicate is packed once, as PackBuilder does.
      const group = [...items, items[3]];
      const built = await workers.build(group);
      assert.ok(built !== null);
      const local = new PackBuilder();
      const offsets = group.map((it) => local.add(it.sha256, it.bytes));
      const want = local.finish();
      assert.equal(built.sha256, want.sha256);
      assert.deepEqual(built.bytes, want.bytes);
      assert.deepEqual(built.offsets, offsets);
      assert.equal(built.size, local.size);
      // Several at once, over every worker.
      const many = await Promise.all(items.map((it) => workers.build([it])));
      for (const [i, b] of many.entries()) {
        assert.equal(b?.sha256, hashBytes(b!.bytes));
        assert.deepEqual(b!.bytes.subarray(0, items[i].size), items[i].bytes);
      }
    } finally {
      workers.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "PackWorkers: a file changed or gone since its hash is answered null (built in-process)",
  ignore: (navigator.hardwareConcurrency ?? 1) < 2,
  async fn() {
    const dir = await Deno.makeTempDir();
    const workers = PackWorkers.forFiles(10_000)!;
    try {
      const items = await files(dir, 3);
      await Deno.writeTextFile(items[1].file, "changed\n");
      assert.equal(await workers.build(items), null);
      await Deno.remove(items[2].file);
      assert.equal(await workers.build([items[0], items[2]]), null);
      // The worker goes on after a failure.
      assert.ok((await workers.build([items[0]])) !== null);
      // After close, and once aborted, nothing is sent to a worker.
      const aborted = new AbortController();
      aborted.abort();
      assert.equal(await workers.build([items[0]], aborted.signal), null);
      workers.close();
      assert.equal(await workers.build([items[0]]), null);
    } finally {
      workers.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("PackWorkers: no workers for a few files", () => {
  assert.equal(PackWorkers.forFiles(10), undefined);
});
