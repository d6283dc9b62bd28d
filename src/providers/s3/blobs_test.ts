/**
 * `S3Blobs.hasBlobs` against a fake bucket (no server): how many requests the
 * whole-area listing costs on small and large stores. moto is too slow to
 * seed a store of more than 1,000 blobs in a unit test.
 */
import assert from "node:assert/strict";
import type { HeadObjectCommandInput, ListObjectsV2CommandInput } from "@aws-sdk/client-s3";
import { S3Blobs } from "./blobs.ts";
import { S3Store } from "./client.ts";

/** A sorted store of `n` blob names spread evenly over the key space. */
function names(n: number): string[] {
  return Array.from(
    { length: n },
    (_, j) =>
      Math.floor(j * 65_536 / n).toString(16).padStart(4, "0") + j.toString(16).padStart(60, "0"),
  );
}

/** A store whose client answers ListObjectsV2 (StartAfter, 1,000 keys a page) and HEAD. */
function fakeStore(stored: string[]) {
  const keys = stored.map((h) => `blobs/${h.slice(0, 2)}/${h}`);
  const calls: string[] = [];
  const s3 = new S3Store({ bucket: "b", prefix: "", forcePathStyle: true, region: "us-east-1" }, {
    callTimeoutMs: 5_000,
  });
  s3.client.middlewareStack.add((_next, context) => (args) => {
    if (context.commandName === "ListObjectsV2Command") {
      const { Prefix = "", StartAfter = "" } = args.input as ListObjectsV2CommandInput;
      calls.push(`LIST ${Prefix}`);
      const all = keys.filter((k) => k.startsWith(Prefix) && k > StartAfter);
      const page = all.slice(0, 1000);
      const output = { Contents: page.map((Key) => ({ Key })), IsTruncated: all.length > 1000 };
      return Promise.resolve({ output: output as never, response: {} });
    }
    const { Key = "" } = args.input as HeadObjectCommandInput;
    calls.push(`HEAD ${Key}`);
    if (keys.includes(Key)) return Promise.resolve({ output: {} as never, response: {} });
    const err = Object.assign(new Error("not found"), {
      name: "NotFound",
      $metadata: { httpStatusCode: 404 },
    });
    return Promise.reject(err);
  }, { step: "initialize", priority: "low" });
  const blobs = new S3Blobs(s3);
  const has = (h: string[], opts: { fresh?: boolean } = {}) => blobs.hasBlobs(h, opts);
  /** Removes a blob behind the provider's back (another command's gc). */
  const remove = (h: string) => keys.splice(keys.indexOf(`blobs/${h.slice(0, 2)}/${h}`), 1);
  return { store: { has }, calls, remove };
}

const missing = (i: number) => "f".repeat(4) + i.toString(16).padStart(60, "0");

Deno.test("has: a small store is listed whole once, then answered from memory", async () => {
  const stored = names(2_500);
  const { store, calls } = fakeStore(stored);
  const ask = [...stored.filter((_, i) => i % 100 === 0), missing(1), missing(2)]; // 27
  const pad = Array.from({ length: 10 }, (_, i) => missing(10 + i));
  const found = await store.has([...ask, ...pad]);
  assert.equal(found.size, 25);
  assert.deepEqual(calls, ["LIST blobs/", "LIST blobs/", "LIST blobs/"]);
  // Later calls (any size) cost nothing: every shard is known.
  assert.equal((await store.has([stored[7], missing(3)])).size, 1);
  assert.equal(calls.length, 3);
});

Deno.test("has: a large store stops the whole-area listing after one page", async () => {
  const stored = names(200_000);
  const { store, calls } = fakeStore(stored);
  // 40 hashes in the last shard ("ff"): a budget of 5 pages, 200 needed.
  const ask = [stored[199_990], ...Array.from({ length: 39 }, (_, i) => missing(i))];
  const found = await store.has(ask);
  assert.deepEqual([...found], [stored[199_990]]);
  assert.equal(calls.filter((c) => c === "LIST blobs/").length, 1, calls.join("\n"));
  // The rest went to the shard: one listing (its ~780 keys fit one page).
  assert.deepEqual(calls.slice(1), ["LIST blobs/ff/"]);
});

Deno.test("has: concurrent callers share one whole-area listing", async () => {
  const { store, calls } = fakeStore([]);
  const ask = Array.from({ length: 32 }, (_, i) => missing(i));
  const all = await Promise.all([store.has(ask), store.has(ask), store.has(ask.slice(0, 2))]);
  for (const found of all) assert.equal(found.size, 0);
  assert.deepEqual(calls, ["LIST blobs/"]);
});

Deno.test("has: isolated hashes get a HEAD, shards with two a listing", async () => {
  const stored = names(300);
  const { store, calls } = fakeStore(stored);
  const twin = stored[0].slice(0, 4) + "f".repeat(60);
  const found = await store.has([stored[0], twin, stored[150]]);
  assert.deepEqual([...found].sort(), [stored[0], stored[150]].sort());
  assert.deepEqual(calls.sort(), [`HEAD blobs/80/${stored[150]}`, "LIST blobs/00/"].sort());
});

Deno.test("has: fresh asks the store (a HEAD per hash), not the memory, and forgets what is gone", async () => {
  const stored = names(40);
  const { store, calls, remove } = fakeStore(stored);
  assert.equal((await store.has(stored)).size, 40);
  remove(stored[3]);
  calls.length = 0;
  assert.equal((await store.has([stored[3]])).size, 1, "memory still says stored");
  assert.deepEqual(calls, []);
  const fresh = await store.has([stored[3], stored[4]], { fresh: true });
  assert.deepEqual(fresh, new Set([stored[4]]));
  assert.deepEqual(
    calls.sort(),
    [
      `HEAD blobs/${stored[3].slice(0, 2)}/${stored[3]}`,
      `HEAD blobs/${stored[4].slice(0, 2)}/${stored[4]}`,
    ].sort(),
  );
  calls.length = 0;
  assert.equal((await store.has([stored[3]])).size, 0, "the removed blob is forgotten");
  assert.deepEqual(calls, [], "its shard is still known in full");
});
