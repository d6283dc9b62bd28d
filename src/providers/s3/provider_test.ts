import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { ContentChangedError, DatastoreError, NotFoundError } from "../../errors.ts";
import type { ProviderContext } from "../../provider/contract.ts";
import { Datastore } from "../../provider/datastore.ts";
import { guardProvider } from "../../provider/guard.ts";
import { listAllRecords } from "../../provider/keys.ts";
import { runProbe } from "../../provider/probe.ts";
import { freshBucket, S3_ENDPOINT, s3TestOptions, testClient } from "./_test_server.ts";
import { S3Provider, type S3ProviderOptions } from "./provider.ts";

const ENV = { AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test", AWS_REGION: "us-east-1" };
const opts = s3TestOptions();

// The SDK reads credentials from the process environment.
for (const [k, v] of Object.entries(ENV)) Deno.env.set(k, v);
Deno.env.delete("AWS_CA_BUNDLE");
Deno.env.delete("AWS_PROFILE");

function ctx(extra: Partial<ProviderContext> = {}): ProviderContext {
  return { callTimeoutMs: 30_000, host: hostname(), pid: Deno.pid, baseDir: "/", ...extra };
}

let shared: Promise<string> | undefined;
let n = 0;

/** A provider on a fresh prefix of a shared bucket, with that bucket and prefix. */
async function fresh(o: S3ProviderOptions & { prefix?: string } = {}) {
  shared ??= freshBucket("provider");
  const bucket = await shared;
  const prefix = o.prefix ?? `t${n++}-${crypto.randomUUID().slice(0, 8)}`;
  const p = new S3Provider({ bucket, prefix, endpoint: S3_ENDPOINT! }, ctx(), { env: ENV, ...o });
  await p.init();
  /** Reads or writes an object below the prefix directly, as another tool would. */
  const raw = {
    put: (rel: string, Body: string, Metadata?: Record<string, string>) =>
      testClient().send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `${prefix}/${rel}`,
          Body: enc(Body),
          Metadata,
        }),
      ),
    get: async (rel: string) => {
      const out = await testClient().send(
        new GetObjectCommand({ Bucket: bucket, Key: `${prefix}/${rel}` }),
      );
      return { bytes: await out.Body!.transformToByteArray(), meta: out.Metadata ?? {} };
    },
  };
  return { p, bucket, prefix, raw };
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const readAll = async (s: ReadableStream<Uint8Array>) =>
  new Uint8Array(await new Response(s).arrayBuffer());

Deno.test({ name: "s3 caps --probe passes every check on moto", ...opts }, async () => {
  const { p } = await fresh();
  const checks = await runProbe(p);
  assert.deepEqual(checks.filter((c) => !c.ok), [], JSON.stringify(checks, null, 2));
  assert.ok(checks.length >= 10);
  assert.deepEqual(await listAllRecords(p, "probe/"), [], "the probe left records behind");
  assert.deepEqual(p.capabilities(), {
    scopedSync: true,
    atomicCommit: true,
    serverTime: true,
    clockResolutionMs: 1_000,
    rangedReads: true,
    maxConcurrency: 16,
  });
});

Deno.test({ name: "s3 open: a missing bucket is NotFound naming it", ...opts }, async () => {
  const p = new S3Provider(
    { bucket: "no-such-bucket-ms", prefix: "p", endpoint: S3_ENDPOINT! },
    ctx(),
    { env: ENV },
  );
  await p.open(); // sends nothing: the marker read that follows finds out
  await p.init();
  assert.equal(p.requestCount, 0);
  const calls = [
    () => p.getRecord("config"),
    () => p.createRecord("config", enc("{}")),
    () => p.listRecords("heads/"),
    () => p.putBlob(sha(enc("x")), { kind: "bytes", bytes: enc("x") }),
  ];
  for (const call of calls) {
    const err = await call().catch((e) => e);
    assert.ok(err instanceof NotFoundError, String(err));
    assert.equal(err.exitCode, 3);
    assert.match(err.message, /bucket no-such-bucket-ms does not exist\. Create it, or fix/);
  }
});

Deno.test({ name: "s3 records: create-if-absent has exactly one winner", ...opts }, async () => {
  const { p } = await fresh();
  const got = await Promise.all(
    Array.from({ length: 8 }, (_, i) => p.createRecord("locks/global", enc(`w${i}`))),
  );
  const won = got.flatMap((v, i) => (v === null ? [] : [i]));
  assert.equal(won.length, 1, `${won.length} of 8 concurrent creates won`);
  const rec = await p.getRecord("locks/global");
  assert.equal(dec(rec!.bytes), `w${won[0]}`);
  assert.equal(rec!.version, got[won[0]]);
  assert.equal(await p.createRecord("locks/global", enc("again")), null);
});

Deno.test({ name: "s3 records: stale versions are refused, gone ones too", ...opts }, async () => {
  const { p } = await fresh();
  assert.equal(await p.getRecord("heads/vpc/m1"), null);
  assert.equal(await p.replaceRecord("heads/vpc/m1", enc("x"), "no-such-version"), null);
  assert.equal(await p.deleteRecord("heads/vpc/m1", "no-such-version"), false);
  const v1 = (await p.createRecord("heads/vpc/m1", enc("one")))!;
  const v2 = (await p.replaceRecord("heads/vpc/m1", enc("two"), v1))!;
  assert.ok(v2 !== null && v2 !== v1);
  assert.equal(await p.replaceRecord("heads/vpc/m1", enc("stale"), v1), null);
  assert.equal(await p.deleteRecord("heads/vpc/m1", v1), false);
  assert.equal(dec((await p.getRecord("heads/vpc/m1"))!.bytes), "two");
  // Of 8 replaces of one version, one wins.
  const replaced = await Promise.all(
    Array.from({ length: 8 }, (_, i) => p.replaceRecord("heads/vpc/m1", enc(`r${i}`), v2)),
  );
  const v3 = replaced.find((v) => v !== null)!;
  assert.equal(replaced.filter((v) => v !== null).length, 1);
  assert.equal(await p.deleteRecord("heads/vpc/m1", v3), true);
  assert.equal(await p.getRecord("heads/vpc/m1"), null);
  assert.equal(await p.replaceRecord("heads/vpc/m1", enc("back"), v3), null);
  assert.equal(await p.deleteRecord("heads/vpc/m1", v3), false);
});

Deno.test(
  { name: "s3 records: identical bytes get a new version every write", ...opts },
  async () => {
    const { p, raw } = await fresh();
    const body = enc('{"generation": 1}\n');
    const seen = new Set<string>();
    let v = await p.createRecord("heads/vpc/m1", body);
    for (let i = 0; i < 4; i++) {
      assert.ok(v !== null && !seen.has(v), `version ${v} came back`);
      seen.add(v);
      v = await p.replaceRecord("heads/vpc/m1", body, v);
    }
    assert.ok(v !== null && !seen.has(v));
    const rec = (await p.getRecord("heads/vpc/m1"))!;
    assert.deepEqual(rec.bytes, body, "the caller reads exactly its bytes");
    // As stored: the bytes, then 64 characters of JSON whitespace naming the write.
    const stored = await raw.get("heads/vpc/m1");
    assert.equal(stored.bytes.length, body.length + 64);
    assert.deepEqual(stored.bytes.subarray(0, body.length), body);
    assert.match(dec(stored.bytes.subarray(body.length)), /^[ \t\r\n]{64}$/);
    assert.match(stored.meta["modelsync-write"] ?? "", /^[0-9a-f]{32}$/);
    assert.deepEqual(
      JSON.parse(dec(stored.bytes)),
      { generation: 1 },
      "still JSON for other tools",
    );
  },
);

Deno.test(
  { name: "s3 records: objects without a write id read as they are", ...opts },
  async () => {
    const { p, raw } = await fresh();
    // Format-1 objects (written before records had a trailer), and odd ones.
    const plain = '{"format": 1}\n';
    await raw.put("modelsync.json", plain);
    await raw.put("manifests/vpc/m1.json", `{"generation": 3}${" ".repeat(64)}`);
    const marker = (await p.getRecord("modelsync.json"))!;
    assert.equal(dec(marker.bytes), plain);
    assert.equal(dec((await p.getRecord("manifests/vpc/m1.json"))!.bytes).length, 17 + 64);
    // migrate removes them by version.
    assert.equal(await p.deleteRecord("modelsync.json", marker.version), true);
    assert.equal(await p.getRecord("modelsync.json"), null);
    // A record whose trailer was damaged reads with it (the caller sees a corrupt record).
    const v = (await p.createRecord("locks/global", enc("{}")))!;
    assert.ok(v);
    const id = (await raw.get("locks/global")).meta["modelsync-write"]!;
    await raw.put("locks/global", "{}" + " ".repeat(64), { "modelsync-write": id });
    assert.equal(dec((await p.getRecord("locks/global"))!.bytes), "{}" + " ".repeat(64));
  },
);

Deno.test({ name: "s3 records: the store's clock comes with every read", ...opts }, async () => {
  const { p } = await fresh();
  const before = Date.now();
  await p.createRecord("locks/global", enc("t"));
  const rec = (await p.getRecord("locks/global"))!;
  assert.ok(rec.storeNowMs !== undefined && rec.modifiedMs !== undefined);
  assert.equal(rec.storeNowMs % 1000, 0, "HTTP dates have 1 s resolution");
  assert.ok(rec.modifiedMs <= rec.storeNowMs + 1_000);
  assert.ok(Math.abs(rec.modifiedMs - before) < 60_000);
});

Deno.test(
  { name: "s3 records: listings page, stay under the prefix, skip blobs", ...opts },
  async () => {
    const { p, raw } = await fresh({ pageSize: 2 });
    const keys = ["heads/a/m1", "heads/a/m2", "heads/a/m3", "heads/b/m1", "heads/bb/m1"];
    const versions = new Map<string, string>();
    for (const k of keys) versions.set(k, (await p.createRecord(k, enc(k)))!);
    await p.createRecord("history/a/m1/000000000001-ab12cd34ab12cd34", enc("h"));
    await raw.put("heads/", ""); // a "folder" object made by a console: no record
    for (let i = 0; i < 5; i++) {
      const bytes = enc(`blob ${i}`);
      await p.putBlob(sha(bytes), { kind: "bytes", bytes });
    }
    // One page per call, of at most 2 keys ("heads/" itself is listed, not returned).
    const first = await p.listRecords("heads/");
    assert.deepEqual(first.items.map((r) => r.key), ["heads/a/m1"]);
    assert.ok(first.cursor !== undefined);
    const all = await listAllRecords(p, "heads/");
    assert.deepEqual(all.map((r) => r.key), keys);
    for (const r of all) assert.equal(r.version, versions.get(r.key));
    assert.deepEqual((await listAllRecords(p, "heads/b")).map((r) => r.key), keys.slice(3));
    assert.deepEqual((await listAllRecords(p, "heads/b/")).map((r) => r.key), ["heads/b/m1"]);
    // The whole datastore: every record, no blob; the blobs area costs one jump.
    const before = p.requestCount;
    const everything = await listAllRecords(p, "");
    // 12 objects, 2 a page: one page of blobs, the jump past them, 3 pages of records.
    assert.equal(p.requestCount - before, 5, "the blobs area is skipped in one jump");
    assert.deepEqual(everything.map((r) => r.key), [
      ...keys,
      "history/a/m1/000000000001-ab12cd34ab12cd34",
    ]);
    assert.deepEqual(await p.listRecords("blobs/"), { items: [] });
    // A deleted record is gone from the listing at once.
    assert.ok(await p.deleteRecord(keys[1], versions.get(keys[1])!));
    assert.ok(!(await listAllRecords(p, "heads/")).some((r) => r.key === keys[1]));
    await assert.rejects(p.getRecord("blobs/00/x"), /Invalid record key/);
    await assert.rejects(p.createRecord("a/../b", enc("x")), /Invalid record key/);
  },
);

Deno.test({ name: "s3 blobs: ranged reads, listing, delete", ...opts }, async () => {
  const { p } = await fresh({ pageSize: 2 });
  const blobs = Array.from({ length: 5 }, (_, i) => enc(`blob number ${i} `.repeat(100 + i)));
  const hashes = blobs.map(sha);
  for (const [i, bytes] of blobs.entries()) await p.putBlob(hashes[i], { kind: "bytes", bytes });
  const b = blobs[4];
  const range = async (offset: number, length: number) =>
    dec(await readAll(await p.getBlob(hashes[4], { range: { offset, length } })));
  assert.equal(await range(10, 25), dec(b.subarray(10, 35)));
  assert.equal(await range(b.length - 5, 100), dec(b.subarray(b.length - 5)), "range past the end");
  assert.equal(await range(b.length + 10, 5), "", "a range after the end is empty");
  assert.equal(await range(3, 0), "");
  // Pages of 2, every blob with its size and time.
  const listed = new Map<string, number>();
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await p.listBlobs(cursor === undefined ? {} : { cursor });
    for (const item of page.items) {
      listed.set(item.hash, item.size);
      assert.ok(item.modifiedMs > 0);
    }
    cursor = page.cursor;
    pages++;
  } while (cursor !== undefined);
  assert.equal(pages, 3);
  assert.deepEqual(listed, new Map(hashes.map((h, i) => [h, blobs[i].length])));
  await p.deleteBlob(hashes[0]);
  await p.deleteBlob(hashes[0]); // twice is fine
  assert.deepEqual(await p.hasBlobs(hashes), new Set(hashes.slice(1)), "the cache forgot it");
  for (const length of [undefined, 0, 5]) {
    const call = () =>
      p.getBlob(hashes[0], length === undefined ? {} : { range: { offset: 0, length } });
    const err = await call().catch((e) => e);
    assert.ok(err instanceof NotFoundError, String(err));
    assert.match(err.message, /is missing from the datastore s3:\/\//);
  }
});

Deno.test(
  { name: "s3 blobs: changed files refused, streamed and multipart files", ...opts },
  async () => {
    const { p } = await fresh();
    const dir = await Deno.makeTempDir({ prefix: "modelsync-s3-" });
    try {
      // 2 KiB: read whole; 9 MiB: streamed single PUT; 64 MiB + 1: multipart.
      for (const size of [2048, 9 * 1024 * 1024, 64 * 1024 * 1024 + 1]) {
        const bytes = new Uint8Array(size);
        for (let i = 0; i < size; i += 65_536) {
          crypto.getRandomValues(
            bytes.subarray(i, i + 65_536),
          );
        }
        const path = `${dir}/f${size}`;
        await Deno.writeFile(path, bytes);
        const hash = sha(bytes);
        // The file changed after it was scanned: refused, nothing stored.
        const other = sha(new Uint8Array([1]));
        await assert.rejects(p.putBlob(other, { kind: "file", path, size }), ContentChangedError);
        assert.equal((await p.hasBlobs([other])).size, 0);
        await assert.rejects(
          p.putBlob(hash, { kind: "file", path, size: size - 1 }),
          ContentChangedError,
        );
        assert.equal((await p.hasBlobs([hash])).size, 0);
        await p.putBlob(hash, { kind: "file", path, size });
        await p.putBlob(hash, { kind: "file", path, size }); // already stored: fine
        const back = await readAll(await p.getBlob(hash));
        assert.equal(back.length, size);
        assert.equal(sha(back), hash);
      }
      await assert.rejects(
        p.putBlob(sha(enc("x")), { kind: "bytes", bytes: enc("y") }),
        ContentChangedError,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test({ name: "s3 hasBlobs batches by shard and remembers", ...opts }, async () => {
  const { p, prefix } = await fresh();
  const stored: string[] = [];
  for (let i = 0; i < 6; i++) {
    const bytes = enc(`blob ${i}`);
    stored.push(sha(bytes));
    await p.putBlob(sha(bytes), { kind: "bytes", bytes });
  }
  const twin = stored[0].slice(0, 2) + "0".repeat(62); // same shard, not stored
  let before = p.requestCount;
  assert.deepEqual([...await p.hasBlobs(stored)].sort(), [...stored].sort());
  assert.equal(p.requestCount - before, 0, "own uploads are known");
  // Another process asks: one request per shard (a HEAD, or a listing for two).
  const { p: q } = await fresh({ prefix });
  before = q.requestCount;
  assert.deepEqual([...await q.hasBlobs([...stored, twin])].sort(), [...stored].sort());
  const shards = new Set([...stored, twin].map((h) => h.slice(0, 2))).size;
  assert.equal(q.requestCount - before, shards, "one request per shard");
  before = q.requestCount;
  assert.equal((await q.hasBlobs([stored[0], twin])).size, 1);
  assert.equal(q.requestCount - before, 0, "a listed shard is answered from memory");
});

Deno.test({ name: "s3 hasBlobs: a large ask lists the blobs area once", ...opts }, async () => {
  const { p, prefix, raw } = await fresh();
  const stored: string[] = [];
  for (let i = 0; i < 3; i++) {
    const bytes = enc(`swept ${i}`);
    stored.push(sha(bytes));
    await p.putBlob(sha(bytes), { kind: "bytes", bytes });
  }
  const missing = Array.from({ length: 40 }, (_, i) => sha(enc(`no ${i}`)));
  // A stray object named like a blob but in the wrong shard is not that blob.
  const stray = missing[0].startsWith("00") ? missing[1] : missing[0];
  await raw.put(`blobs/00/${stray}`, "stray");
  const { p: q } = await fresh({ prefix });
  const before = q.requestCount;
  const all = [...stored, ...missing];
  const answers = await Promise.all([1, 2, 3, 4].map(() => q.hasBlobs(all)));
  for (const found of answers) assert.deepEqual([...found].sort(), [...stored].sort());
  assert.equal(q.requestCount - before, 1, "one listing of blobs/ for every caller");
  // A blob stored since by someone else is reported missing (its upload then
  // gets 412, success), never the other way round.
  const late = enc("late");
  await p.putBlob(sha(late), { kind: "bytes", bytes: late });
  assert.equal((await q.hasBlobs([sha(late)])).size, 0);
  await q.putBlob(sha(late), { kind: "bytes", bytes: late });
  assert.equal((await q.hasBlobs([sha(late)])).size, 1);
});

Deno.test(
  { name: "s3 an endpoint ignoring conditional writes is caught above", ...opts },
  async () => {
    const { prefix } = await fresh();
    // Strip the conditions on the way out, as a minimal S3 server would ignore them.
    const { p } = await fresh({
      prefix,
      configureClient: (client) =>
        client.middlewareStack.add((next) => (args) => {
          const headers = (args.request as { headers?: Record<string, string> }).headers ?? {};
          for (const h of Object.keys(headers)) {
            if (/^if-(none-)?match$/i.test(h)) delete headers[h];
          }
          return next(args);
        }, { step: "finalizeRequest", name: "stripConditions" }),
    });
    const v = await p.createRecord("heads/vpc/m1", enc("a"));
    assert.ok(v !== null);
    assert.notEqual(await p.createRecord("heads/vpc/m1", enc("b")), null, "the store overwrote it");
    const checks = await runProbe(p);
    assert.equal(checks.find((c) => c.name === "conditional writes")?.ok, false);
    // The datastore layer refuses writes and declares nothing.
    const ds = new Datastore(guardProvider(p, { callTimeoutMs: 30_000 }), {
      host: hostname(),
      pid: Deno.pid,
      skewMarginMs: 5_000,
    });
    await ds.init();
    await ds.open();
    const caps = ds.capabilities!();
    assert.equal(caps.scopedSync, false);
    assert.match(caps.limitation ?? "", /ignores conditional writes/);
  },
);

Deno.test("s3 a refused connection is a retryable exit 6 without secrets", async () => {
  const secret = "SUPERSECRETVALUE1234567890";
  Deno.env.set("AWS_SECRET_ACCESS_KEY", secret);
  try {
    const p = new S3Provider(
      { bucket: "whatever-bucket", prefix: "p", endpoint: "http://127.0.0.1:1" },
      ctx({ callTimeoutMs: 2_000 }),
      { env: ENV },
    );
    for (const call of [() => p.getRecord("config"), () => p.listBlobs()]) {
      const err = await call().catch((e) => e);
      assert.ok(err instanceof DatastoreError, String(err));
      assert.equal(err.retryable, true, "connection refused is transient");
      assert.equal(err.exitCode, 6);
      assert.ok(!err.message.includes(secret) && !err.message.includes("\n"), err.message);
    }
    await p.close();
  } finally {
    Deno.env.set("AWS_SECRET_ACCESS_KEY", ENV.AWS_SECRET_ACCESS_KEY);
  }
});

Deno.test("s3 a hung endpoint fails by the request deadline, retryable", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const c of listener) conns.push(c); // accept, never answer
    } catch { /* closed */ }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  const p = new S3Provider(
    { bucket: "bkt", prefix: "p", endpoint: `http://127.0.0.1:${port}` },
    ctx({ callTimeoutMs: 1_000 }),
    { env: ENV },
  );
  try {
    const err = await p.getRecord("config").catch((e) => e);
    assert.ok(err instanceof DatastoreError && err.retryable, String(err));
    assert.match(err.message, /^Cannot read record config on the s3 datastore s3:\/\/bkt\/p /);
  } finally {
    await p.close();
    listener.close();
    for (const c of conns) c.close();
    await accepting;
  }
});
