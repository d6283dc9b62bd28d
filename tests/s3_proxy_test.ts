/**
 * The test proxy in front of the local S3 server: it passes requests and
 * bodies through unchanged and counts them, strips conditional headers from
 * writes on demand, refuses one access key like S3 does, goes down and
 * comes back on the same port, delays every request, and answers chosen
 * requests with an S3 error.
 */
import assert from "node:assert/strict";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { freshBucket, S3_ENDPOINT, s3TestOptions } from "../src/providers/s3/_test_server.ts";
import { S3Proxy } from "./_s3_proxy.ts";
import { pseudoRandomBytes, sha256 } from "./_fs.ts";

function client(endpoint: string, accessKeyId = "test"): S3Client {
  return new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey: "test" },
    maxAttempts: 1,
  });
}

/** The error name (S3 code) of a failed call, or "ok". */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    const e = err as Error & { code?: string };
    return e.name === "Error" && e.code ? e.code : e.name;
  }
}

Deno.test({
  name: "S3 proxy: bodies pass through unchanged both ways and every request is counted",
  ...s3TestOptions(),
  async fn() {
    const bucket = await freshBucket("proxy-count");
    await using proxy = await S3Proxy.start(S3_ENDPOINT!);
    const s3 = client(proxy.endpoint);
    try {
      const bytes = pseudoRandomBytes(300_000, 7);
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "p/blob", Body: bytes }));
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "p/blob" }));
      assert.equal(head.ContentLength, bytes.length, "HEAD keeps content-length");
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "p/blob" }));
      assert.equal(sha256(await got.Body!.transformToByteArray()), sha256(bytes));
      // An object stored with a content-encoding is served as stored, not decompressed.
      const text = new TextEncoder().encode("not really gzip");
      await s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: "p/gz", Body: text, ContentEncoding: "gzip" }),
      );
      const gz = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "p/gz" }));
      assert.equal(gz.ContentEncoding, "gzip");
      assert.deepEqual(await gz.Body!.transformToByteArray(), text);
      const list = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "p/" }));
      assert.deepEqual(list.Contents?.map((o) => o.Key), ["p/blob", "p/gz"]);

      assert.equal(proxy.count, 6, proxy.summary());
      assert.deepEqual(
        proxy.requests.map((r) => [r.method, r.status]),
        [["PUT", 200], ["HEAD", 200], ["GET", 200], ["PUT", 200], ["GET", 200], ["GET", 200]],
        proxy.summary(),
      );
      assert.equal(proxy.requests[0].path, `/${bucket}/p/blob`);
      assert.match(proxy.requests[5].query, /list-type=2/);
      proxy.reset();
      assert.equal(proxy.count, 0);
      await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "p/blob" }));
      assert.equal(proxy.count, 1);
    } finally {
      s3.destroy();
    }
  },
});

Deno.test({
  name: "S3 proxy: stripConditionals turns conditional writes into plain ones",
  ...s3TestOptions(),
  async fn() {
    const bucket = await freshBucket("proxy-strip");
    await using proxy = await S3Proxy.start(S3_ENDPOINT!);
    const s3 = client(proxy.endpoint);
    const put = (body: string, cond: { IfNoneMatch?: string; IfMatch?: string }) =>
      outcome(s3.send(new PutObjectCommand({ Bucket: bucket, Key: "k", Body: body, ...cond })));
    try {
      assert.equal(await put("one", { IfNoneMatch: "*" }), "ok");
      assert.equal(await put("two", { IfNoneMatch: "*" }), "PreconditionFailed");
      assert.equal(
        await put("two", { IfMatch: '"0123456789abcdef0123456789abcdef"' }),
        "PreconditionFailed",
      );
      proxy.stripConditionals = true;
      assert.equal(await put("three", { IfNoneMatch: "*" }), "ok", "create-if-absent ignored");
      assert.equal(await put("four", { IfMatch: '"0123456789abcdef0123456789abcdef"' }), "ok");
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "k" }));
      assert.equal(await got.Body!.transformToString(), "four");
    } finally {
      s3.destroy();
    }
    await using stripping = await S3Proxy.start(S3_ENDPOINT!, { stripConditionals: true });
    assert.equal(stripping.stripConditionals, true);
  },
});

Deno.test({
  name: "S3 proxy: rejectAccessKey answers 403 InvalidAccessKeyId for that key only",
  ...s3TestOptions(),
  async fn() {
    const bucket = await freshBucket("proxy-reject");
    await using proxy = await S3Proxy.start(S3_ENDPOINT!);
    proxy.rejectAccessKey = "AKIAREJECTEDEXAMPLE1";
    const bad = client(proxy.endpoint, "AKIAREJECTEDEXAMPLE1");
    const good = client(proxy.endpoint);
    try {
      const put = (c: S3Client) =>
        outcome(c.send(new PutObjectCommand({ Bucket: bucket, Key: "k", Body: "x" })));
      assert.equal(await put(bad), "InvalidAccessKeyId");
      // A HEAD answer has no body: a bare 403, as from S3.
      const head = await bad.send(new HeadObjectCommand({ Bucket: bucket, Key: "k" })).then(
        () => 0,
        (err) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode,
      );
      assert.equal(head, 403);
      assert.equal(await put(good), "ok");
      assert.deepEqual(proxy.requests.map((r) => r.status), [403, 403, 200], proxy.summary());
    } finally {
      bad.destroy();
      good.destroy();
    }
  },
});

Deno.test({
  name: "S3 proxy: pause refuses connections and cuts off requests in flight; resume serves again",
  ...s3TestOptions(),
  async fn() {
    const bucket = await freshBucket("proxy-pause");
    await using proxy = await S3Proxy.start(S3_ENDPOINT!);
    const s3 = client(proxy.endpoint);
    const put = (key: string) =>
      outcome(s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "x" })));
    try {
      assert.equal(await put("before"), "ok");
      // Down while a request is in flight: that request fails, the object is not stored.
      proxy.onRequest = (r) => {
        if (r.path.endsWith("/during")) void proxy.pause();
      };
      assert.notEqual(await put("during"), "ok");
      assert.equal(proxy.paused, true);
      proxy.onRequest = undefined;
      const down = await put("while-down");
      assert.match(down, /ECONNREFUSED|ECONNRESET|TimeoutError|socket|connect/i);
      assert.equal(proxy.count, 2, `no request reached a paused proxy\n${proxy.summary()}`);
      await proxy.resume();
      assert.equal(await put("after"), "ok");
      const direct = client(S3_ENDPOINT!);
      try {
        const list = await direct.send(new ListObjectsV2Command({ Bucket: bucket }));
        assert.deepEqual(list.Contents?.map((o) => o.Key).sort(), ["after", "before"]);
      } finally {
        direct.destroy();
      }
    } finally {
      s3.destroy();
    }
  },
});

Deno.test({
  name: "S3 proxy: loseAnswer lets a write land but breaks the client's connection",
  ...s3TestOptions(),
  async fn() {
    const bucket = await freshBucket("proxy-lose");
    await using proxy = await S3Proxy.start(S3_ENDPOINT!);
    proxy.loseAnswer = (r) => r.method === "PUT";
    const s3 = client(proxy.endpoint);
    try {
      const put = await outcome(
        s3.send(new PutObjectCommand({ Bucket: bucket, Key: "k", Body: "landed" })),
      );
      assert.notEqual(put, "ok");
      assert.equal(proxy.requests[0].status, 0, proxy.summary());
      proxy.loseAnswer = undefined;
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "k" }));
      assert.equal(await got.Body!.transformToString(), "landed");
    } finally {
      s3.destroy();
    }
  },
});

Deno.test({
  name: "S3 proxy: latencyMs delays every request; failRequest answers an S3 error unforwarded",
  ...s3TestOptions(),
  async fn() {
    const bucket = await freshBucket("proxy-latency");
    await using proxy = await S3Proxy.start(S3_ENDPOINT!, { latencyMs: 120 });
    assert.equal(proxy.latencyMs, 120);
    const s3 = client(proxy.endpoint);
    const put = (key: string) =>
      outcome(s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "x" })));
    try {
      for (const key of ["a", "b"]) {
        const t0 = performance.now();
        assert.equal(await put(key), "ok");
        const ms = performance.now() - t0;
        assert.ok(ms >= 115, `a request took ${ms.toFixed(0)} ms through a 120 ms proxy`);
      }
      proxy.failRequest = (r) => (r.path.endsWith("/slow") ? 503 : undefined);
      assert.equal(await put("slow"), "SlowDown");
      proxy.failRequest = (r) => (r.path.endsWith("/broken") ? 500 : undefined);
      assert.equal(await put("broken"), "InternalError");
      proxy.failRequest = undefined;
      assert.deepEqual(proxy.requests.map((r) => r.status), [200, 200, 503, 500], proxy.summary());
      const direct = client(S3_ENDPOINT!);
      try {
        const list = await direct.send(new ListObjectsV2Command({ Bucket: bucket }));
        assert.deepEqual(list.Contents?.map((o) => o.Key), ["a", "b"], "failed ones never sent");
      } finally {
        direct.destroy();
      }
    } finally {
      s3.destroy();
    }
  },
});

Deno.test("S3 proxy: request headers and lengths reach the upstream as sent (no S3 server needed)", async () => {
  const seen: { method: string; headers: Record<string, string>; length: number }[] = [];
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = new Uint8Array(await req.arrayBuffer());
    seen.push({
      method: req.method,
      headers: Object.fromEntries(req.headers),
      length: body.length,
    });
    return new Response(req.method === "HEAD" ? null : body, {
      headers: { "content-length": req.method === "HEAD" ? "12345" : String(body.length) },
    });
  });
  try {
    await using proxy = await S3Proxy.start(
      `http://127.0.0.1:${(upstream.addr as Deno.NetAddr).port}`,
      { stripConditionals: true },
    );
    const put = await fetch(`${proxy.endpoint}/b/k`, {
      method: "PUT",
      headers: { "content-length": "5", "if-none-match": "*", "x-amz-if-match-size": "5" },
      body: "hello",
    });
    assert.equal(await put.text(), "hello");
    const streamed = new Blob(["chunk", "ed"]).stream();
    const init: RequestInit & { duplex: "half" } = {
      method: "PUT",
      body: streamed,
      duplex: "half",
    };
    assert.equal(await (await fetch(`${proxy.endpoint}/b/c`, init)).text(), "chunked");
    const get = await fetch(`${proxy.endpoint}/b/k`, { headers: { "if-none-match": '"abc"' } });
    await get.body?.cancel();
    const head = await fetch(`${proxy.endpoint}/b/k`, { method: "HEAD" });
    assert.equal(head.headers.get("content-length"), "12345", "HEAD keeps the object's length");

    assert.equal(seen[0].headers["content-length"], "5");
    assert.equal(seen[0].headers["transfer-encoding"], undefined);
    assert.equal(seen[0].headers["if-none-match"], undefined, "stripped from a write");
    assert.equal(seen[0].headers["x-amz-if-match-size"], undefined, "stripped from a write");
    assert.equal(seen[0].headers["accept-encoding"], "identity");
    assert.equal(seen[1].headers["transfer-encoding"], "chunked", "a chunked body stays chunked");
    assert.equal(seen[1].length, 7);
    assert.equal(seen[2].headers["if-none-match"], '"abc"', "reads keep their conditions");
    assert.equal(proxy.count, 4, proxy.summary());
  } finally {
    await upstream.shutdown();
  }
});
