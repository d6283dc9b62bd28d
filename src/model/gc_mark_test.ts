import assert from "node:assert/strict";
import { MemoryLockStore, memoryProvider } from "../lock/_memory_provider.ts";
import { GC_MARK_KEY } from "../provider/keys.ts";
import { gcMarkMoved, moveGcMark, readGcMark } from "./gc_mark.ts";

const BY = { holder: "ops", host: "h", pid: 1 };

Deno.test("gc mark: absent until a gc removes blobs; each move is seen, a removal under way too", async () => {
  const p = memoryProvider(new MemoryLockStore(), { host: "h", pid: 1 }).provider;
  const none = await readGcMark(p);
  assert.deepEqual(none, { version: null, removing: false });
  assert.equal(gcMarkMoved(none, await readGcMark(p)), false, "no gc: nothing moved");

  await moveGcMark(p, { removing: true, by: BY });
  const during = await readGcMark(p);
  assert.equal(during.removing, true);
  assert.equal(gcMarkMoved(none, during), true, "a gc started after the first read");
  assert.equal(gcMarkMoved(during, await readGcMark(p)), true, "read while removing");

  await moveGcMark(p, { removing: false, by: BY });
  const done = await readGcMark(p);
  assert.equal(done.removing, false);
  assert.notEqual(done.version, during.version);
  assert.equal(gcMarkMoved(done, await readGcMark(p)), false, "read after a finished gc");
  assert.equal(gcMarkMoved(none, done), true);
});

Deno.test("gc mark: a mark that does not parse counts as a removal under way", async () => {
  const p = memoryProvider(new MemoryLockStore(), { host: "h", pid: 1 }).provider;
  await p.createRecord(GC_MARK_KEY, new TextEncoder().encode("not json"));
  const mark = await readGcMark(p);
  assert.equal(mark.removing, true);
  assert.equal(gcMarkMoved(mark, mark), true);
  await moveGcMark(p, { removing: false, by: BY });
  assert.equal((await readGcMark(p)).removing, false, "the next gc writes it whole again");
});
