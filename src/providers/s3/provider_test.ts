import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import {
  ConflictError,
  ContentChangedError,
  CorruptError,
  DatastoreError,
  NotFoundError,
} from "../../errors.ts";
import { makeManifest } from "../../model/manifest.ts";
import type { ProviderContext } from "../../provider/contract.ts";
import { runConformance } from "../../provider/mod.ts";
import { freshBucket, S3_ENDPOINT, s3TestOptions, testClient } from "./_test_server.ts";
import { S3Provider, type S3ProviderOptions } from "./provider.ts";

const M = { type: "vpc", id: "m1" };
const BY = { holder: "t", host: "h", pid: 1 };
const ENV = { AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test", AWS_REGION: "us-east-1" };
const opts = s3TestOptions();

// The SDK reads credentials from the process environment.
for (const [k, v] of Object.entries(ENV)) Deno.env.set(k, v);
Deno.env.delete("AWS_CA_BUNDLE");
Deno.env.delete("AWS_PROFILE");

function ctx(extra: Partial<ProviderContext> = {}): ProviderContext {
  return {
    callTimeoutMs: 30_000,
    host: hostname(),
    pid: Deno.pid,
    skewMarginMs: 50,
    baseDir: "/",
    ...extra,
  };
}

let bucket: Promise<string> | undefined;
let n = 0;

/** A fresh prefix in a shared bucket (buckets are cheap too, but slower on moto). */
const prefixes = new WeakMap<S3Provider, string>();
/** The prefix a provider from {@linkcode fresh} uses. */
const prefixOf = (p: S3Provider) => prefixes.get(p)!;

async function fresh(
  init = true,
  o: S3ProviderOptions & { prefix?: string } = {},
): Promise<S3Provider> {
  bucket ??= freshBucket("provider");
  const prefix = o.prefix ?? `t${n++}-${crypto.randomUUID().slice(0, 8)}`;
  const p = new S3Provider(
    { bucket: await bucket, prefix, endpoint: S3_ENDPOINT! },
    ctx(),
    { env: ENV, ...o },
  );
  prefixes.set(p, prefix);
  if (init) await p.init();
  return p;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

Deno.test({ name: "s3 provider passes the conformance kit", ...opts }, async (t) => {
  await runConformance(t, {
    name: "s3",
    factory: () => fresh(),
    // Expiry is judged by the server's 1 s clock: a 300 ms lease is stale
    // after at most 3 s.
    expiryWaitMs: 3_100,
  });
});

Deno.test({ name: "s3 open: missing bucket, missing marker, bad marker", ...opts }, async () => {
  const nob = new S3Provider(
    { bucket: "no-such-bucket-ms", prefix: "p", endpoint: S3_ENDPOINT! },
    ctx(),
    { env: ENV },
  );
  const e1 = await nob.open().catch((e) => e);
  assert.ok(e1 instanceof NotFoundError, String(e1));
  assert.equal(e1.exitCode, 3);
  assert.match(e1.message, /bucket no-such-bucket-ms does not exist\. Create it, or fix/);
  const p = await fresh(false);
  const e2 = await p.open().catch((e) => e);
  assert.ok(e2 instanceof NotFoundError, String(e2));
  assert.match(e2.message, /not initialised .*run "modelsync init --datastore s3:\/\//);
  await p.init();
  await p.init(); // an existing marker is fine
  await p.open();
  assert.equal(p.conditionalWrites, "yes");
  assert.deepEqual(p.capabilities(), {
    scopedSync: true,
    atomicCommit: true,
    serverTime: true,
    maxConcurrency: 16,
  });
  const prefix = prefixOf(p);
  await testClient().send(
    new PutObjectCommand({ Bucket: await bucket!, Key: `${prefix}/modelsync.json`, Body: "{no" }),
  );
  await assert.rejects(p.open(), CorruptError);
});

Deno.test(
  { name: "s3 no-op pull costs 3 requests; commits reuse seen ETags", ...opts },
  async () => {
    const p = await fresh();
    for (let i = 0; i < 5; i++) {
      const m = { type: "vpc", id: `m${i}` };
      await p.commitManifest(m, 0, makeManifest(m, 1, [], BY));
    }
    const q = await fresh(false, { prefix: prefixOf(p) });
    const before = q.requestCount;
    await q.open();
    const listed = await q.listManifests();
    assert.equal(listed.length, 5);
    assert.equal(q.requestCount - before, 3, "open (GET + conditional PUT) + one listing");
    // A commit after a read: one PUT. After a listing only: GET + PUT.
    const got = await q.getManifest(M);
    const c0 = q.requestCount;
    await q.commitManifest(M, got!.manifest.generation, makeManifest(M, 2, [], BY));
    assert.equal(q.requestCount - c0, 1);
    const m3 = { type: "vpc", id: "m3" };
    const c1 = q.requestCount;
    await q.commitManifest(m3, 1, makeManifest(m3, 2, [], BY));
    assert.equal(q.requestCount - c1, 2);
    // Another writer moved m1: the remembered ETag is stale, the CAS refuses.
    await p.getManifest(M);
    await assert.rejects(
      p.commitManifest(M, 1, makeManifest(M, 2, [], BY)),
      (e) => e instanceof ConflictError && e.current === 2,
    );
    await p.commitManifest(M, 2, makeManifest(M, 3, [], BY));
    await assert.rejects(
      q.commitManifest(M, 2, makeManifest(M, 3, [], BY)),
      (e) => e instanceof ConflictError && e.current === 3,
    );
  },
);

Deno.test(
  { name: "s3 blobs: changed file refused, large and multipart files", ...opts },
  async () => {
    const p = await fresh();
    const dir = await Deno.makeTempDir({ prefix: "modelsync-s3-" });
    try {
      // 9 MiB: streamed single PUT; 65 MiB + 1: multipart.
      for (const size of [9 * 1024 * 1024, 64 * 1024 * 1024 + 1]) {
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
        const back = new Uint8Array(await new Response(await p.getBlob(hash)).arrayBuffer());
        assert.equal(back.length, size);
        assert.equal(sha(back), hash);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test({ name: "s3 hasBlobs batches by shard", ...opts }, async () => {
  const p = await fresh();
  const stored: string[] = [];
  for (let i = 0; i < 6; i++) {
    const bytes = new TextEncoder().encode(`blob ${i}`);
    stored.push(sha(bytes));
    await p.putBlob(sha(bytes), { kind: "bytes", bytes });
  }
  // Two hashes in one shard (one stored), plus the stored ones.
  const twin = stored[0].slice(0, 2) + "0".repeat(62);
  // What this instance stored is known without a request.
  let before = p.requestCount;
  assert.deepEqual([...await p.hasBlobs(stored)].sort(), [...stored].sort());
  assert.equal(p.requestCount - before, 0, "own uploads are known");
  // Another process asks: one request per shard (a HEAD, or a listing for two).
  const q = await fresh(false, { prefix: prefixOf(p) });
  before = q.requestCount;
  const found = await q.hasBlobs([...stored, twin]);
  assert.deepEqual([...found].sort(), [...stored].sort());
  const shards = new Set([...stored, twin].map((h) => h.slice(0, 2))).size;
  assert.equal(q.requestCount - before, shards, "one request per shard");
  // The listed shard is remembered: its hashes cost nothing more.
  before = q.requestCount;
  assert.equal((await q.hasBlobs([stored[0], twin])).size, 1);
  assert.equal(q.requestCount - before, 0, "a listed shard is answered from memory");
});

Deno.test({ name: "s3 hasBlobs: a large ask lists the blobs area once", ...opts }, async () => {
  const p = await fresh();
  const stored: string[] = [];
  for (let i = 0; i < 3; i++) {
    const bytes = new TextEncoder().encode(`swept ${i}`);
    stored.push(sha(bytes));
    await p.putBlob(sha(bytes), { kind: "bytes", bytes });
  }
  const missing = Array.from({ length: 40 }, (_, i) => sha(new TextEncoder().encode(`no ${i}`)));
  // A stray object named like a blob but in the wrong shard is not that blob.
  const stray = missing[0].startsWith("00") ? missing[1] : missing[0];
  await testClient().send(
    new PutObjectCommand({
      Bucket: await bucket!,
      Key: `${prefixOf(p)}/blobs/00/${stray}`,
      Body: "stray",
    }),
  );
  // A new process (another instance on the prefix) asks about 43 hashes, 4 times at once.
  const q = await fresh(false, { prefix: prefixOf(p) });
  const before = q.requestCount;
  const all = [...stored, ...missing];
  const answers = await Promise.all([1, 2, 3, 4].map(() => q.hasBlobs(all)));
  for (const found of answers) assert.deepEqual([...found].sort(), [...stored].sort());
  assert.equal(q.requestCount - before, 1, "one listing of blobs/ for every caller");
  // A blob stored since by someone else is reported missing (an upload then
  // gets 412, success), never the other way round.
  const late = new TextEncoder().encode("late");
  await p.putBlob(sha(late), { kind: "bytes", bytes: late });
  assert.equal((await q.hasBlobs([sha(late)])).size, 0);
  await q.putBlob(sha(late), { kind: "bytes", bytes: late }); // 412: already stored
  assert.equal((await q.hasBlobs([sha(late)])).size, 1);
});

Deno.test({ name: "s3 lock expiry is judged by the server clock", ...opts }, async () => {
  const HOUR = 3_600_000;
  // The holder's clock runs an hour behind; the other's an hour ahead.
  const holder = await fresh(true, { now: () => Date.now() - HOUR });
  const prefix = prefixOf(holder);
  const ahead = await fresh(false, { prefix, now: () => Date.now() + HOUR });
  await ahead.open();
  const req = (name: string, ttlMs: number) => ({
    holder: name,
    host: "other-host",
    pid: 1,
    operation: "push",
    ttlMs,
  });
  const live = await holder.lock({ kind: "model", model: M }).tryAcquire(req("holder", 4_000));
  assert.ok(live.acquired);
  // By the records' clocks the lease expired an hour ago; by the server's it is live.
  const seen = await ahead.lock({ kind: "model", model: M }).tryAcquire(req("thief", 4_000));
  assert.ok(!seen.acquired, "a live lease was stolen by a client whose clock runs ahead");
  assert.equal(seen.current.stale, false);
  assert.ok(seen.current.ttlLeftMs > 0 && seen.current.ttlLeftMs <= 5_000);
  await new Promise((r) => setTimeout(r, 6_100));
  const took = await ahead.lock({ kind: "model", model: M }).tryAcquire(req("next", 4_000));
  assert.ok(took.acquired, "an expired lease was not taken over");
  assert.equal(took.tookOver?.nonce, live.record.nonce);
  await assert.rejects(
    holder.lock({ kind: "model", model: M }).renew(live.record.nonce),
    /Lost the lock on vpc\/m1/,
  );
});

Deno.test({ name: "s3 endpoint ignoring conditional writes is refused", ...opts }, async () => {
  const p = await fresh();
  const prefix = prefixOf(p);
  await p.commitManifest(M, 0, makeManifest(M, 1, [], BY));
  // An endpoint that ignores conditional writes: strip the headers on the way out.
  const q = await fresh(false, {
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
  await q.open();
  assert.equal(q.conditionalWrites, "no");
  const { limitation, ...caps } = q.capabilities();
  assert.deepEqual(caps, {
    scopedSync: false,
    atomicCommit: false,
    serverTime: false,
    maxConcurrency: 16,
  });
  assert.match(limitation ?? "", /ignores conditional writes .*AWS S3, MinIO, Cloudflare R2/);
  // Reads work; commits and locks are refused with a one-line exit-6 error.
  assert.equal((await q.listManifests()).length, 1);
  assert.equal((await q.getManifest(M))?.manifest.generation, 1);
  const err = await q.commitManifest(M, 1, makeManifest(M, 2, [], BY)).catch((e) => e);
  assert.ok(err instanceof DatastoreError && err.exitCode === 6 && !err.retryable, String(err));
  assert.match(err.message, /ignores conditional writes .*pull --no-lock/);
  assert.ok(!err.message.includes("\n"));
  await assert.rejects(
    q.lock({ kind: "global" }).tryAcquire({
      holder: "x",
      host: "h",
      pid: 1,
      operation: "push",
      ttlMs: 30_000,
    }),
    /ignores conditional writes/,
  );
  assert.equal((await p.getManifest(M))?.manifest.generation, 1, "nothing was written");
  const checks = await q.probe();
  const race = checks.find((c) => c.name === "concurrent create-if-absent");
  assert.equal(race?.ok, false);
  assert.equal(race?.capability, "atomicCommit");
});

Deno.test("s3 a refused connection is a retryable exit 6 without secrets", async () => {
  const secret = "SUPERSECRETVALUE1234567890";
  Deno.env.set("AWS_SECRET_ACCESS_KEY", secret);
  try {
    const p = new S3Provider(
      { bucket: "whatever-bucket", prefix: "p", endpoint: "http://127.0.0.1:1" },
      ctx({ callTimeoutMs: 2_000 }),
      { env: ENV },
    );
    const err = await p.open().catch((e) => e);
    assert.ok(err instanceof DatastoreError, String(err));
    assert.equal(err.retryable, true, "connection refused is transient");
    assert.equal(err.exitCode, 6);
    assert.ok(!err.message.includes(secret));
    assert.ok(!err.message.includes("\n"));
    await p.close();
  } finally {
    Deno.env.set("AWS_SECRET_ACCESS_KEY", ENV.AWS_SECRET_ACCESS_KEY);
  }
});

Deno.test("s3 a hung endpoint fails within the call deadline, retryable", async () => {
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
    const t0 = Date.now();
    const err = await p.open().catch((e) => e);
    assert.ok(err instanceof DatastoreError && err.retryable, String(err));
    assert.ok(Date.now() - t0 < 5_000);
  } finally {
    await p.close();
    listener.close();
    for (const c of conns) c.close();
    await accepting;
  }
});
