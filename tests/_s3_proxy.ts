/**
 * A small HTTP proxy in front of an S3 server, for tests and benchmarks: it
 * counts the requests a command makes, delays every request by a set latency (a datastore far away), and injects
 * faults (an endpoint that ignores conditional writes, refused credentials,
 * a server that goes down, an answer lost after the server did the work, an
 * error answer to chosen requests, a connection reset, a request never
 * answered, a body that stalls part-way).
 *
 * Bodies stream both ways and pass through byte for byte: the request body
 * keeps its `content-length` (or stays chunked when the client sent it
 * chunked), and responses are never decompressed (upstream is always asked
 * for `accept-encoding: identity`; S3 serves the stored bytes either way).
 * fetch sets `Host` to the upstream's, so a server that checks SigV4
 * signatures (which cover `host`) would refuse proxied requests; moto does
 * not check them.
 *
 * @example
 * ```ts
 * import { S3Proxy } from "./_s3_proxy.ts";
 * await using proxy = await S3Proxy.start("http://127.0.0.1:9000", { latencyMs: 30 });
 * // point the client at proxy.endpoint, run something, then:
 * console.log(proxy.count, proxy.requests.map((r) => `${r.method} ${r.path}`));
 * ```
 * @module
 */

/** One request the proxy received. `status` is 0 until the answer's status is known. */
export interface ProxiedRequest {
  method: string;
  /** The path as sent (still percent-encoded), e.g. `/bucket/prefix/modelsync.json`. */
  path: string;
  /** The query string without `?`, e.g. `list-type=2&prefix=manifests%2F`. */
  query: string;
  /** HTTP status of the answer; 0 while pending or when the request was cut off. */
  status: number;
}

/** Options of {@linkcode S3Proxy.start}. */
export interface S3ProxyOptions {
  /** Start as an endpoint that ignores conditional writes (see {@linkcode S3Proxy.stripConditionals}). */
  stripConditionals?: boolean;
  /** Start with this latency (see {@linkcode S3Proxy.latencyMs}); default 0. */
  latencyMs?: number;
}

/**
 * Headers not forwarded: hop-by-hop ones (RFC 9110 §7.6.1), `host` (fetch sets
 * the upstream's) and `expect` (this side already answered `100-continue`).
 * `content-length` is forwarded: with it fetch sends the streamed body with
 * that length instead of chunked (S3 refuses a chunked PutObject).
 */
const HOP_BY_HOP = new Set([
  "host",
  "expect",
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** Conditional request headers an endpoint without conditional writes ignores. */
function isConditional(name: string): boolean {
  return /^(if-|x-amz-if-|x-amz-copy-source-if-)/.test(name);
}

/** The access key id of a SigV4 request (header or presigned query), or null. */
function accessKeyOf(req: Request, url: URL): string | null {
  const auth = req.headers.get("authorization") ?? "";
  const m = /Credential=([^/,\s]+)\//.exec(auth);
  if (m) return m[1];
  const q = url.searchParams.get("X-Amz-Credential");
  return q ? q.split("/")[0] : null;
}

/** A 403 InvalidAccessKeyId as S3 sends it (HEAD answers carry no body). */
function invalidAccessKey(method: string, key: string): Response {
  const id = crypto.randomUUID().replaceAll("-", "").slice(0, 16).toUpperCase();
  const headers = {
    "content-type": "application/xml",
    "x-amz-request-id": id,
    "x-amz-id-2": btoa(id),
  };
  if (method === "HEAD") return new Response(null, { status: 403, headers });
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidAccessKeyId</Code>` +
    `<Message>The AWS Access Key Id you provided does not exist in our records.</Message>` +
    `<AWSAccessKeyId>${key}</AWSAccessKeyId><RequestId>${id}</RequestId>` +
    `<HostId>${btoa(id)}</HostId></Error>`;
  return new Response(body, { status: 403, headers });
}

/** A 403 AccessDenied as S3 sends it to a key whose policy does not allow the call. */
function accessDenied(method: string): Response {
  const id = crypto.randomUUID().replaceAll("-", "").slice(0, 16).toUpperCase();
  const headers = { "content-type": "application/xml", "x-amz-request-id": id };
  if (method === "HEAD") return new Response(null, { status: 403, headers });
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>` +
    `<Message>Access Denied</Message><RequestId>${id}</RequestId></Error>`;
  return new Response(body, { status: 403, headers });
}

/**
 * A counting, fault-injecting proxy in front of an S3 endpoint. Start it with
 * {@linkcode S3Proxy.start}, point clients at {@linkcode S3Proxy.endpoint}.
 */
export class S3Proxy {
  /** `http://127.0.0.1:PORT`: where clients connect. */
  readonly endpoint: string;
  /** Every request received since the last {@linkcode reset} (forwarded or answered here). */
  readonly requests: ProxiedRequest[] = [];
  /**
   * Drop `If-None-Match`, `If-Match`, `If-(Un)Modified-Since` and the
   * `x-amz-if-*` / `x-amz-copy-source-if-*` headers from writes (PUT, POST,
   * DELETE) before forwarding: an endpoint that ignores conditional writes.
   * Reads keep their conditions. (A server that checks signatures would
   * refuse the altered requests; moto does not check them.)
   */
  stripConditionals: boolean;
  /**
   * Milliseconds every request waits before it is forwarded (or refused), as
   * if the server were that far away; each request waits on its own, so
   * concurrent requests overlap their waits as on a real network.
   */
  latencyMs: number;
  /**
   * Called for each request after it is recorded (and after the latency);
   * a status returned (500, 503, …) is answered here with an S3 error of
   * that status once the request body was read whole, and the request is
   * never forwarded (a part upload that fails, a server that throttles).
   */
  failRequest?: (req: ProxiedRequest) => number | undefined;
  /** Answer 403 InvalidAccessKeyId to requests signed with this access key id. */
  rejectAccessKey?: string;
  /** Answer 403 AccessDenied to writes (PUT, POST, DELETE) signed with this access key id. */
  readOnlyAccessKey?: string;
  /**
   * Called for each request as it arrives, after it is recorded and before it
   * is forwarded (e.g. to `pause()` once the Nth upload begins: that request
   * is then cut off too).
   */
  onRequest?: (req: ProxiedRequest) => void;
  /**
   * Called once the server has answered a request; when it returns true the
   * answer is lost: the client's connection breaks although the server did
   * the work (a write that landed but whose success the client never saw).
   * Such a request is recorded with status 0.
   */
  loseAnswer?: (req: ProxiedRequest, status: number) => boolean;
  /**
   * Called for each request after the latency; true breaks the connection
   * before any answer and before the server sees the request (a reset).
   */
  resetRequest?: (req: ProxiedRequest) => boolean;
  /**
   * Called for each request after the latency; true never answers it (a hung
   * server): the client gives up on its own; the request ends when the proxy pauses.
   */
  stallRequest?: (req: ProxiedRequest) => boolean;
  /**
   * Called once the server has answered; a number N sends the status, the
   * headers and the first N bytes of the body, then nothing more (a stalled
   * body) until the proxy pauses.
   */
  stallBody?: (req: ProxiedRequest, status: number) => number | undefined;

  readonly #upstream: URL;
  readonly #port: number;
  #server: Deno.HttpServer | null = null;
  /** Settles when the last shutdown finished (the port is free again). */
  #stopping: Promise<void> = Promise.resolve();
  /** Aborts the requests in flight when the proxy pauses. */
  #inFlight = new AbortController();

  private constructor(upstream: URL, port: number, opts: S3ProxyOptions) {
    this.#upstream = upstream;
    this.#port = port;
    this.endpoint = `http://127.0.0.1:${port}`;
    this.stripConditionals = opts.stripConditionals ?? false;
    this.latencyMs = opts.latencyMs ?? 0;
  }

  /** Starts a proxy on a free loopback port in front of `upstream` (`http://host:port`). */
  static async start(upstream: string, opts: S3ProxyOptions = {}): Promise<S3Proxy> {
    const url = new URL(upstream);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new Error(`S3Proxy: upstream must be an http(s) URL, got ${upstream}`);
    }
    const first = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (first.addr as Deno.NetAddr).port;
    first.close();
    const proxy = new S3Proxy(url, port, opts);
    await proxy.resume();
    return proxy;
  }

  /** Requests received since the last {@linkcode reset}: forwarded, refused or cut off. */
  get count(): number {
    return this.requests.length;
  }

  /** True while paused (not listening). */
  get paused(): boolean {
    return this.#server === null;
  }

  /** Forgets the recorded requests. */
  reset(): void {
    this.requests.length = 0;
  }

  /** One line per request (`PUT 200 /bucket/key?query`), for assertion messages. */
  /** Injects no fault any more: no failures, resets, stalls, hooks or latency. */
  clearFaults(): void {
    this.failRequest = undefined;
    this.resetRequest = undefined;
    this.stallRequest = undefined;
    this.stallBody = undefined;
    this.onRequest = undefined;
    this.latencyMs = 0;
  }

  /** The most times one request (method, path and query) was sent since the last reset. */
  mostAttempts(): number {
    const n = new Map<string, number>();
    for (const r of this.requests) {
      const k = `${r.method} ${r.path}?${r.query}`;
      n.set(k, (n.get(k) ?? 0) + 1);
    }
    return Math.max(0, ...n.values());
  }

  summary(): string {
    return this.requests
      .map((r) => `${r.method} ${r.status} ${r.path}${r.query ? `?${r.query}` : ""}`)
      .join("\n");
  }

  /**
   * Stops listening, as if the server went down: new connections are refused,
   * requests in flight are cut off (the client's connection breaks), idle
   * keep-alive connections are closed.
   */
  async pause(): Promise<void> {
    const server = this.#server;
    if (server !== null) {
      this.#server = null;
      this.#inFlight.abort();
      this.#stopping = server.shutdown();
    }
    await this.#stopping;
  }

  /** Listens again on the same port. */
  async resume(): Promise<void> {
    if (this.#server !== null) return;
    await this.#stopping;
    if (this.#server !== null) return;
    this.#inFlight = new AbortController();
    let lastError: unknown;
    // The port was ours a moment ago; retry briefly while the old socket closes.
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        this.#server = Deno.serve({
          hostname: "127.0.0.1",
          port: this.#port,
          onListen: () => {},
          onError: () => new Response(null, { status: 502 }),
        }, (req) => this.#handle(req));
        return;
      } catch (err) {
        if (!(err instanceof Deno.errors.AddrInUse)) throw err;
        lastError = err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    throw lastError;
  }

  /** Stops the proxy for good. */
  async close(): Promise<void> {
    await this.pause();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const rawPath = req.url.slice(url.origin.length).split("?")[0];
    const entry: ProxiedRequest = {
      method: req.method,
      path: rawPath,
      query: url.search.replace(/^\?/, ""),
      status: 0,
    };
    this.requests.push(entry);
    this.onRequest?.(entry);
    const cut = this.#inFlight.signal;
    if (cut.aborted) return brokenResponse();
    if (this.latencyMs > 0) {
      const waited = await delay(this.latencyMs, cut);
      if (!waited) return brokenResponse();
    }
    if (this.resetRequest?.(entry)) {
      await req.body?.cancel().catch(() => {});
      return brokenResponse();
    }
    if (this.stallRequest?.(entry)) {
      // (cut only: reading req.signal makes Deno.serve warn about its legacy behaviour)
      await aborted(cut);
      return brokenResponse();
    }
    const failWith = this.failRequest?.(entry);
    if (failWith !== undefined) {
      // Read the body whole first, so the client sees the answer rather than a reset.
      await drain(req.body);
      entry.status = failWith;
      return s3Error(req.method, failWith);
    }

    const key = accessKeyOf(req, url);
    if (this.rejectAccessKey !== undefined && key === this.rejectAccessKey) {
      // Drain the body so the client sees the answer rather than a reset.
      await req.body?.cancel().catch(() => {});
      entry.status = 403;
      return invalidAccessKey(req.method, key);
    }

    const isWrite = req.method === "PUT" || req.method === "POST" || req.method === "DELETE";
    if (isWrite && this.readOnlyAccessKey !== undefined && key === this.readOnlyAccessKey) {
      await req.body?.cancel().catch(() => {});
      entry.status = 403;
      return accessDenied(req.method);
    }
    const headers = new Headers();
    for (const [name, value] of req.headers) {
      if (HOP_BY_HOP.has(name)) continue;
      if (this.stripConditionals && isWrite && isConditional(name)) continue;
      headers.set(name, value);
    }
    // fetch decompresses a gzip/br answer when it may (keeping the content-encoding and
    // content-length of the compressed bytes): ask for identity, so the stored bytes pass
    // through untouched. S3 serves an object's bytes as stored whatever the client accepts.
    headers.set("accept-encoding", "identity");

    // A streamed request body needs duplex "half" (the fetch standard; not in Deno's types).
    const init: RequestInit & { duplex: "half" } = {
      method: req.method,
      headers,
      body: req.body,
      redirect: "manual",
      signal: cut,
      duplex: "half",
    };
    let upstream: Response;
    try {
      upstream = await fetch(`${this.#upstream.origin}${rawPath}${url.search}`, init);
    } catch (err) {
      if (cut.aborted) return brokenResponse();
      entry.status = 502;
      return new Response(`S3Proxy: upstream failed: ${(err as Error).message}\n`, {
        status: 502,
      });
    }
    if (this.loseAnswer?.(entry, upstream.status)) {
      await upstream.body?.cancel().catch(() => {});
      return brokenResponse();
    }
    entry.status = upstream.status;
    const out = new Headers();
    for (const [name, value] of upstream.headers) {
      if (!HOP_BY_HOP.has(name)) out.append(name, value);
    }
    const stallAt = this.stallBody?.(entry, upstream.status);
    const body = upstream.body === null
      ? null
      : stallAt === undefined
      ? cutOff(upstream.body, cut)
      : stallAfter(upstream.body, stallAt, cut);
    return new Response(body, { status: upstream.status, headers: out });
  }
}

/** Waits `ms`; false when `signal` aborted first. */
function delay(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Resolves once `signal` aborts. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** The first `n` bytes of `body`, then nothing until `signal` aborts; then the stream fails. */
function stallAfter(
  body: ReadableStream<Uint8Array>,
  n: number,
  signal: AbortSignal,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent >= n) {
        await aborted(signal);
        await reader.cancel().catch(() => {});
        controller.error(new Error("S3Proxy: stalled body given up"));
        return;
      }
      const { done, value } = await reader.read();
      if (done) {
        controller.close();
        return;
      }
      const part = value.subarray(0, Math.max(0, n - sent));
      sent += part.byteLength;
      if (part.byteLength > 0) controller.enqueue(part);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

/** Reads a request body to its end (errors ignored: the client may have given up). */
async function drain(body: ReadableStream<Uint8Array> | null): Promise<void> {
  if (body === null) return;
  try {
    for await (const _ of body) { /* discard */ }
  } catch { /* cut off */ }
}

/** An S3 error answer of `status`: InternalError (500), SlowDown (503), else ServiceUnavailable. */
function s3Error(method: string, status: number): Response {
  const code = status === 500
    ? "InternalError"
    : status === 503
    ? "SlowDown"
    : "ServiceUnavailable";
  const id = crypto.randomUUID().replaceAll("-", "").slice(0, 16).toUpperCase();
  const headers = { "content-type": "application/xml", "x-amz-request-id": id };
  if (method === "HEAD") return new Response(null, { status, headers });
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>Injected by S3Proxy</Message><RequestId>${id}</RequestId></Error>`;
  return new Response(body, { status, headers });
}

/** An answer whose body fails at once, which breaks the client's connection. */
function brokenResponse(): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.error(new Error("S3Proxy paused"));
    },
  });
  return new Response(body, { status: 503 });
}

/** `body`, failing as soon as `signal` aborts (the proxy paused mid-answer). */
function cutOff(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  const onAbort = () => reader.cancel().catch(() => {});
  signal.addEventListener("abort", onAbort, { once: true });
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (signal.aborted) {
        controller.error(new Error("S3Proxy paused"));
        return;
      }
      try {
        const { done, value } = await reader.read();
        if (done) {
          signal.removeEventListener("abort", onAbort);
          controller.close();
        } else controller.enqueue(value);
      } catch (err) {
        controller.error(err);
      }
    },
    cancel(reason) {
      signal.removeEventListener("abort", onAbort);
      return reader.cancel(reason);
    },
  });
}
