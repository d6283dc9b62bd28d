/**
 * S3 multipart uploads on the local S3 server, through the test proxy (which
 * delays each request, so parts in flight overlap, and fails chosen parts):
 * a file over the threshold goes up in parallel parts within the bounds, a
 * changed file and a failed part abort the upload and leave nothing, and
 * the guard's retry of a failed upload starts afresh.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { ContentChangedError, DatastoreError } from "../src/errors.ts";
import type { BlobSource, Provider } from "../src/provider/contract.ts";
import { guardProvider } from "../src/provider/guard.ts";
import {
  freshBucket,
  S3_ENDPOINT,
  s3TestOptions,
  testClient,
} from "../src/providers/s3/_test_server.ts";
import { MULTIPART_BYTES } from "../src/providers/s3/blobs.ts";
import { PARTS_PER_UPLOAD } from "../src/providers/s3/multipart.ts";
import { S3Provider, type S3ProviderOptions } from "../src/providers/s3/provider.ts";
import { type ProxiedRequest, S3Proxy } from "./_s3_proxy.ts";

const ENV = { AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test", AWS_REGION: "us-east-1" };
const opts = s3TestOptions();
for (const [k, v] of Object.entries(ENV)) Deno.env.set(k, v);
Deno.env.delete("AWS_CA_BUNDLE");
Deno.env.delete("AWS_PROFILE");

const MiB = 1024 * 1024;
/** Just over the threshold: 8 parts of 8 MiB and one of 1 byte. */
const SIZE = MULTIPART_BYTES + 1;
const PARTS = 9;

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const isPart = (r: ProxiedRequest) => r.method === "PUT" && /(^|&)partNumber=/.test(r.query);
const isCreate = (r: ProxiedRequest) => r.method === "POST" && /(^|&)uploads(=|&|$)/.test(r.query);
const isComplete = (r: ProxiedRequest) => r.method === "POST" && /(^|&)uploadId=/.test(r.query);
const isAbort = (r: ProxiedRequest) => r.method === "DELETE" && /(^|&)uploadId=/.test(r.query);

let shared: Promise<string> | undefined;
const files = new Map<number, Promise<{ path: string; hash: string }>>();

/** File `n` over the multipart threshold, of random bytes, written once per run. */
function bigFile(n = 0): Promise<{ path: string; hash: string }> {
  let file = files.get(n);
  file ??= (async () => {
    const bytes = new Uint8Array(SIZE);
    for (let i = 0; i < SIZE; i += 65_536) crypto.getRandomValues(bytes.subarray(i, i + 65_536));
    const path = await Deno.makeTempFile({ prefix: "modelsync-multipart-" });
    await Deno.writeFile(path, bytes);
    globalThis.addEventListener("unload", () => Deno.removeSync(path));
    return { path, hash: sha(bytes) };
  })();
  files.set(n, file);
  return file;
}

/** A provider on a fresh prefix reached through `proxy`, and where it keeps its blobs. */
async function through(proxy: S3Proxy, o: S3ProviderOptions = {}) {
  shared ??= freshBucket("multipart");
  const bucket = await shared;
  const prefix = `m-${crypto.randomUUID().slice(0, 8)}`;
  const context = { callTimeoutMs: 30_000, host: hostname(), pid: Deno.pid, baseDir: "/" };
  const p = new S3Provider({ bucket, prefix, endpoint: proxy.endpoint }, context, {
    env: ENV,
    ...o,
  });
  await p.init();
  return { p, bucket, prefix };
}

/** Multipart uploads the server still holds under `prefix` (none once aborted or completed). */
async function openUploads(bucket: string, prefix: string): Promise<number> {
  const out = await testClient().send(
    new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${prefix}/` }),
  );
  return out.Uploads?.length ?? 0;
}

/** The most part uploads in flight at once at the proxy (arrived, not yet answered). */
function watchParts(proxy: S3Proxy): { peak: number } {
  const seen = { peak: 0 };
  proxy.onRequest = (req) => {
    if (!isPart(req)) return;
    const now = proxy.requests.filter((r) => isPart(r) && r.status === 0).length;
    seen.peak = Math.max(seen.peak, now);
  };
  return seen;
}

async function readBack(p: Provider, hash: string): Promise<string> {
  return sha(new Uint8Array(await new Response(await p.getBlob(hash)).arrayBuffer()));
}

Deno.test({
  name: "s3 multipart: a file over the threshold goes up in parallel parts, at most 4 at once",
  ...opts,
  async fn() {
    const { path, hash } = await bigFile();
    await using proxy = await S3Proxy.start(S3_ENDPOINT!, { latencyMs: 150 });
    const seen = watchParts(proxy);
    const { p, bucket, prefix } = await through(proxy);
    const source: BlobSource = { kind: "file", path, size: SIZE };
    try {
      // A file whose content is not its name: every part but the last is sent, then aborted.
      const other = sha(new Uint8Array([1]));
      await assert.rejects(p.putBlob(other, source), ContentChangedError);
      assert.equal(proxy.requests.filter(isPart).length, PARTS - 1, proxy.summary());
      assert.equal(proxy.requests.filter(isComplete).length, 0, "never completed");
      assert.equal(proxy.requests.filter(isAbort).length, 1, proxy.summary());
      assert.equal(await openUploads(bucket, prefix), 0, "the upload was aborted");
      assert.equal((await p.hasBlobs([other])).size, 0);

      proxy.reset();
      seen.peak = 0;
      await p.putBlob(hash, source);
      const parts = proxy.requests.filter(isPart);
      assert.equal(parts.length, PARTS, proxy.summary());
      assert.ok(parts.every((r) => r.status === 200), proxy.summary());
      assert.equal(proxy.requests.filter(isCreate).length, 1);
      assert.equal(proxy.requests.filter(isComplete).length, 1);
      assert.equal(proxy.requests.filter(isAbort).length, 0);
      assert.ok(seen.peak >= 2, `parts went up one at a time (peak ${seen.peak})`);
      assert.ok(seen.peak <= PARTS_PER_UPLOAD, `${seen.peak} parts in flight at once`);
      assert.equal(await openUploads(bucket, prefix), 0);
      assert.equal(await readBack(p, hash), hash);
      // Stored already: one HEAD, nothing sent.
      proxy.reset();
      await p.putBlob(hash, source);
      assert.deepEqual(proxy.requests.map((r) => r.method), ["HEAD"]);
    } finally {
      await p.close();
    }
  },
});

Deno.test({
  name: "s3 multipart: concurrent uploads of one provider share its part budget",
  ...opts,
  async fn() {
    const files = await Promise.all([bigFile(0), bigFile(1)]);
    await using proxy = await S3Proxy.start(S3_ENDPOINT!, { latencyMs: 100 });
    const seen = watchParts(proxy);
    // Room for two parts of 8 MiB across both uploads (each alone would send 4 at once).
    const { p, bucket, prefix } = await through(proxy, { partBudgetBytes: 16 * MiB });
    try {
      await Promise.all(
        files.map((f) => p.putBlob(f.hash, { kind: "file", path: f.path, size: SIZE })),
      );
      assert.equal(proxy.requests.filter(isPart).length, PARTS * 2, proxy.summary());
      assert.ok(seen.peak <= 2, `${seen.peak} parts in flight at once`);
      assert.ok(seen.peak >= 1);
      assert.equal(await openUploads(bucket, prefix), 0);
      for (const f of files) assert.equal(await readBack(p, f.hash), f.hash);
    } finally {
      await p.close();
    }
  },
});

Deno.test({
  name: "s3 multipart: a failed part stops the upload and aborts it; a retry starts afresh",
  ...opts,
  async fn() {
    const { path, hash } = await bigFile();
    await using proxy = await S3Proxy.start(S3_ENDPOINT!, { latencyMs: 100 });
    const { p, bucket, prefix } = await through(proxy);
    const source: BlobSource = { kind: "file", path, size: SIZE };
    try {
      // Part 3 of every upload fails with a 500.
      proxy.failRequest = (r) =>
        isPart(r) && /(^|&)partNumber=3(&|$)/.test(r.query) ? 500 : undefined;
      const err = await p.putBlob(hash, source).catch((e) => e);
      assert.ok(err instanceof DatastoreError, String(err));
      assert.equal(err.retryable, true, "a 500 is transient");
      assert.match(err.message, /InternalError/);
      const sent = proxy.requests.filter(isPart).length;
      // Part 3 and at most the 3 others in flight with it: nothing read after the failure.
      assert.ok(sent <= 3 + PARTS_PER_UPLOAD - 1, `${sent} parts sent:\n${proxy.summary()}`);
      assert.equal(proxy.requests.filter(isComplete).length, 0, "never completed");
      assert.equal(proxy.requests.filter(isAbort).length, 1, proxy.summary());
      assert.equal(proxy.requests.at(-1)!.method, "DELETE", "the abort is the last request");
      assert.equal(await openUploads(bucket, prefix), 0, "no upload left behind");
      assert.equal((await p.hasBlobs([hash])).size, 0, "nothing stored");

      // Through the guard, one failed part costs one attempt: the retry uploads afresh.
      proxy.reset();
      let failures = 0;
      proxy.failRequest = (r) =>
        isPart(r) && /(^|&)partNumber=2(&|$)/.test(r.query) && failures++ === 0 ? 500 : undefined;
      const guarded = guardProvider(p, {
        callTimeoutMs: 30_000,
        backoff: { initialMs: 10, maxMs: 20 },
      });
      await guarded.putBlob(hash, source);
      assert.equal(failures, 2, "part 2 was sent twice, failing once");
      assert.equal(proxy.requests.filter(isCreate).length, 2, proxy.summary());
      assert.equal(proxy.requests.filter(isAbort).length, 1, proxy.summary());
      assert.equal(proxy.requests.filter(isComplete).length, 1, proxy.summary());
      assert.equal(await openUploads(bucket, prefix), 0);
      assert.equal(await readBack(p, hash), hash);
    } finally {
      await p.close();
    }
  },
});
