import assert from "node:assert/strict";
import { join } from "node:path";
import { withTempDir } from "../../_with_temp_dir.ts";
import { ASYNC_FS, SYNC_FS, TempFiles } from "./_fs.ts";
import { RecordStore } from "./records.ts";

const text = (s: string) => new TextEncoder().encode(s);
const read = (
  b: Uint8Array | undefined,
) => (b === undefined ? undefined : new TextDecoder().decode(b));

// The provider picks SYNC_FS on a local disk and ASYNC_FS elsewhere (NFS):
// both must keep the same compare-and-swap semantics.
for (const [name, fs] of [["ASYNC_FS", ASYNC_FS], ["SYNC_FS", SYNC_FS]] as const) {
  Deno.test(`RecordStore (${name}): create, get, replace, delete and list by version; one of many creators wins`, async () => {
    await withTempDir(async (dir) => {
      const store = new RecordStore(dir, new TempFiles(join(dir, "tmp"), 1));
      store.fs = fs;
      assert.equal(await store.get("heads/vpc/m1"), null);
      const v1 = await store.create("heads/vpc/m1", text("one"));
      assert.ok(v1 !== null);
      assert.equal(await store.create("heads/vpc/m1", text("again")), null);
      const got = await store.get("heads/vpc/m1");
      assert.equal(read(got?.bytes), "one");
      assert.equal(got?.version, v1);
      const v2 = await store.replace("heads/vpc/m1", text("two"), v1);
      assert.ok(v2 !== null && v2 !== v1);
      assert.equal(await store.replace("heads/vpc/m1", text("stale"), v1), null);
      assert.equal(await store.delete("heads/vpc/m1", v1), false);
      assert.equal(read((await store.get("heads/vpc/m1"))?.bytes), "two");
      await store.create("heads/vpc/m2", text("m2"));
      assert.deepEqual((await store.list("heads/")).items.map((i) => i.key), [
        "heads/vpc/m1",
        "heads/vpc/m2",
      ]);
      assert.equal(await store.delete("heads/vpc/m1", v2!), true);
      assert.equal(await store.get("heads/vpc/m1"), null);
      assert.deepEqual((await store.list("heads/")).items.map((i) => i.key), ["heads/vpc/m2"]);
      // Many creators at once: exactly one wins, and the record is the winner's.
      const tries = await Promise.all(
        Array.from({ length: 8 }, (_, i) => store.create("leases/global", text(`w${i}`))),
      );
      const won = tries.flatMap((v, i) => (v === null ? [] : [i]));
      assert.equal(won.length, 1);
      assert.equal(read((await store.get("leases/global"))?.bytes), `w${won[0]}`);
      // No temporary file is left behind.
      assert.deepEqual(await Array.fromAsync(Deno.readDir(join(dir, "tmp"))), []);
    });
  });
}
