/**
 * The S3 provider: a datastore under a prefix of an S3 bucket (AWS S3, or
 * any endpoint that honours conditional writes: MinIO, R2, …). Blobs are
 * `./blobs.ts`; a record `K` is the object `PREFIX/K`, changed only by
 * `If-None-Match: *` and `If-Match: ETag`, its version the ETag, its bytes
 * followed by a per-write trailer (design/s3.md, "Records").
 *
 * @example
 * ```ts ignore
 * import { S3Provider } from "./provider.ts";
 * const p = new S3Provider({ bucket: "models", prefix: "team" }, {
 *   callTimeoutMs: 30_000, host: "h", pid: 1, baseDir: "/",
 * });
 * console.log(p.describe()); // { type: "s3", location: "s3://models/team" }
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import { randomBytes } from "node:crypto";
import * as S3 from "@aws-sdk/client-s3";
import { DatastoreError } from "../../errors.ts";
import type * as C from "../../provider/contract.ts";
import { S3Blobs } from "./blobs.ts";
import { conditionFailed, noKey, S3Store, serverDateOf, unquote } from "./client.ts";
import { resolveS3Config, type S3Config } from "./config.ts";

/** Options for tests; none is a user setting. */
export interface S3ProviderOptions {
  /** Environment for endpoint and region (default `Deno.env`). */
  env?: Record<string, string | undefined>;
  /** Called with the SDK client once it is made (tests add middleware). */
  configureClient?: (client: S3.S3Client) => void;
  /** Keys per listing page (default 1,000, S3's most). */
  pageSize?: number;
  /** Bytes of multipart parts in flight across uploads (default 64 MiB). */
  partBudgetBytes?: number;
}

/** User metadata naming the write whose trailer ends a record object. */
export const WRITE_ID_META = "modelsync-write";
const SEGMENT = String.raw`(?!\.\.?(?:/|$))[A-Za-z0-9._@-]+`;
const RECORD_KEY = new RegExp(`^(?!blobs/)${SEGMENT}(?:/${SEGMENT})*$`);
/** JSON whitespace: the four symbols a write id is spelt in. */
const WS = [0x20, 0x09, 0x0a, 0x0d];

/** The trailer of write `id` (32 hex digits): 64 JSON whitespace characters, 2 bits each. */
export function writeTrailer(id: string): Uint8Array {
  return Uint8Array.from(
    { length: 64 },
    (_, i) => WS[(parseInt(id[i >> 1], 16) >> (i & 1) * 2) & 3],
  );
}

/**
 * A stored object's caller bytes: without the trailer when its metadata
 * names a write and its bytes end with that write's trailer; as they are
 * otherwise (format-1 objects, objects other tools wrote).
 */
export function unseal(stored: Uint8Array, id: string | undefined): Uint8Array {
  if (id === undefined || !/^[0-9a-f]{32}$/.test(id) || stored.length < 64) return stored;
  const tail = stored.subarray(stored.length - 64);
  return writeTrailer(id).every((b, i) => tail[i] === b) ? stored.subarray(0, -64) : stored;
}

/** A datastore under an S3 prefix. */
export class S3Provider extends S3Blobs implements C.Provider {
  readonly type = "s3";

  constructor(config: S3Config, context: C.ProviderContext, opts: S3ProviderOptions = {}) {
    const { callTimeoutMs } = context;
    super(
      new S3Store(resolveS3Config(config, opts.env), { callTimeoutMs, pageSize: opts.pageSize }),
      { partBudgetBytes: opts.partBudgetBytes },
    );
    opts.configureClient?.(this.s3.client);
  }

  /** Requests sent so far (tests and benchmarks). */
  get requestCount(): number {
    return this.s3.requests;
  }

  async getRecord(key: string, opts: C.CallOptions = {}): Promise<C.StoredRecord | null> {
    const at = this.#at(key);
    return await this.s3.run(`read record ${key}`, async (abortSignal) => {
      const out = await this.s3.client.send(new S3.GetObjectCommand(at), { abortSignal });
      const stored = (await out.Body?.transformToByteArray()) ?? new Uint8Array();
      const storeNowMs = serverDateOf(out);
      return {
        bytes: unseal(stored, out.Metadata?.[WRITE_ID_META]),
        version: unquote(out.ETag),
        ...(out.LastModified && { modifiedMs: out.LastModified.getTime() }),
        ...(storeNowMs === undefined ? {} : { storeNowMs }),
      };
    }, { signal: opts.signal, expect: noKey(null) });
  }

  createRecord(key: string, bytes: Uint8Array, opts: C.CallOptions = {}) {
    return this.#put(key, bytes, { IfNoneMatch: "*" }, opts);
  }

  replaceRecord(key: string, bytes: Uint8Array, version: string, opts: C.CallOptions = {}) {
    return this.#put(key, bytes, { IfMatch: `"${version}"` }, opts);
  }

  async deleteRecord(key: string, version: string, opts: C.CallOptions = {}): Promise<boolean> {
    const cmd = new S3.DeleteObjectCommand({ ...this.#at(key), IfMatch: `"${version}"` });
    const signal = opts.signal;
    return (await this.s3.send(`delete record ${key}`, cmd, {
      signal,
      expect: conditionFailed,
    })) !==
      null;
  }

  /**
   * One ListObjectsV2 page of the records under `prefix`; objects under
   * `blobs/` are no records, and a listing that reaches them jumps past.
   */
  async listRecords(prefix: string, opts: C.ListOptions = {}): Promise<C.Page<C.RecordListing>> {
    if (prefix.startsWith("blobs/")) return { items: [] };
    for (let after = opts.cursor;;) {
      const got = await this.s3.list(prefix, after, opts.signal);
      const items = got.objects.flatMap(({ rel, etag, modifiedMs }) =>
        rel.startsWith("blobs/") || rel.endsWith("/")
          ? []
          : [{ key: rel, version: etag, modifiedMs }]
      );
      after = got.more?.startsWith("blobs/") && got.more < "blobs/~" ? "blobs/~" : got.more;
      if (after === undefined || items.length > 0) return { items, cursor: after };
    }
  }

  describe(): { type: string; location: string } {
    return { type: this.type, location: this.s3.where };
  }

  capabilities(): C.Capabilities {
    return {
      scopedSync: true,
      atomicCommit: true,
      serverTime: true,
      clockResolutionMs: 1_000,
      rangedReads: true,
      maxConcurrency: 16,
    };
  }

  /**
   * Sends nothing: the marker read that follows is the first request, and a
   * missing bucket fails it with `NotFoundError` naming the bucket (a HEAD
   * here would cost every command a request; a no-op pull makes 3).
   */
  open(opts: C.CallOptions = {}): Promise<void> {
    opts.signal?.throwIfAborted();
    return Promise.resolve();
  }

  /** Buckets are never created here; the marker write finds a missing one. */
  init(opts: C.CallOptions = {}): Promise<void> {
    return this.open(opts);
  }

  close(): Promise<void> {
    this.s3.client.destroy();
    return Promise.resolve();
  }

  /** A conditional PUT of a record and its trailer: the new ETag, or null when the condition failed. */
  async #put(
    key: string,
    bytes: Uint8Array,
    condition: { IfNoneMatch: "*" } | { IfMatch: string },
    opts: C.CallOptions,
  ): Promise<string | null> {
    const id = randomBytes(16).toString("hex");
    const cmd = new S3.PutObjectCommand({
      ...this.#at(key),
      Body: Buffer.concat([bytes, writeTrailer(id)]),
      Metadata: { [WRITE_ID_META]: id },
      ...condition,
    });
    const out = await this.s3.send(`write record ${key}`, cmd, {
      signal: opts.signal,
      bytes: bytes.length,
      expect: conditionFailed,
    });
    if (out === null || out.ETag !== undefined) return out && unquote(out.ETag);
    throw new DatastoreError(
      `The s3 datastore ${this.s3.where} answered a write of ${key} without an ETag: use an ` +
        `endpoint that supports conditional writes (AWS S3, MinIO, Cloudflare R2).`,
    );
  }

  #at(key: string): { Bucket: string; Key: string } {
    if (!RECORD_KEY.test(key)) throw new Error(`Invalid record key ${JSON.stringify(key)}.`);
    return this.s3.at(key);
  }
}
