/**
 * The S3 provider: a datastore under a prefix of an S3 bucket (AWS S3, or
 * any endpoint that honours conditional writes: MinIO, R2, …). Blobs live
 * under `blobs/` (`./blobs.ts`); a record `K` is the object `PREFIX/K`,
 * changed only by `If-None-Match: *` / `If-Match: ETag` requests, its
 * version the ETag (design/s3.md, "Records").
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
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { DatastoreError, NotFoundError } from "../../errors.ts";
import type {
  BlobListing,
  BlobSource,
  CallOptions,
  Capabilities,
  GetBlobOptions,
  ListOptions,
  Page,
  Provider,
  ProviderContext,
  RecordListing,
  StoredRecord,
} from "../../provider/contract.ts";
import { S3BlobStore } from "./blobs.ts";
import { isLostRace, isNoSuchKey, S3Store, serverDateOf, unquote } from "./client.ts";
import { resolveS3Config, type S3Config } from "./config.ts";

/** Options for tests; none is a user setting. */
export interface S3ProviderOptions {
  /** Environment for endpoint and region (default `Deno.env`). */
  env?: Record<string, string | undefined>;
  /** Called with the SDK client once it is made (tests add middleware). */
  configureClient?: (client: S3Client) => void;
  /** Keys per listing page (default 1,000, S3's most). */
  pageSize?: number;
}

/** User metadata naming the write id whose trailer ends a record object. */
export const WRITE_ID_META = "modelsync-write";
const SEGMENT = String.raw`(?!\.\.?(?:/|$))[A-Za-z0-9._@-]+`;
const RECORD_KEY = new RegExp(`^(?!blobs/)${SEGMENT}(?:/${SEGMENT})*$`);
/** JSON whitespace: the four symbols a write id is spelt in. */
const WS = [0x20, 0x09, 0x0a, 0x0d];

/**
 * The trailer of one write: its 16-byte id (32 hex digits) as 64 JSON
 * whitespace characters, so every write's ETag differs and a JSON record
 * stays valid JSON.
 */
export function writeTrailer(id: string): Uint8Array {
  const bits = Buffer.from(id, "hex");
  return Uint8Array.from({ length: 64 }, (_, i) => WS[(bits[i >> 2] >> ((i & 3) * 2)) & 3]);
}

/** A record's bytes as stored: the caller's bytes with the trailer of `id`. */
export function seal(bytes: Uint8Array, id: string): Uint8Array {
  const out = new Uint8Array(bytes.length + 64);
  out.set(bytes);
  out.set(writeTrailer(id), bytes.length);
  return out;
}

/**
 * The caller's bytes of a stored object: without the trailer when the
 * object's metadata names a write id and its bytes end with that id's
 * trailer; as they are otherwise (format-1 objects, objects of other tools).
 */
export function unseal(stored: Uint8Array, id: string | undefined): Uint8Array {
  if (id === undefined || !/^[0-9a-f]{32}$/.test(id) || stored.length < 64) return stored;
  const tail = stored.subarray(stored.length - 64);
  return writeTrailer(id).every((b, i) => tail[i] === b) ? stored.subarray(0, -64) : stored;
}

/** A datastore under an S3 prefix. */
export class S3Provider implements Provider {
  readonly type = "s3";
  readonly #s: S3Store;
  readonly #blobs: S3BlobStore;

  constructor(config: S3Config, context: ProviderContext, opts: S3ProviderOptions = {}) {
    this.#s = new S3Store(resolveS3Config(config, opts.env), { ...context, ...opts });
    opts.configureClient?.(this.#s.client);
    this.#blobs = new S3BlobStore(this.#s);
  }

  /** Requests sent so far (tests and benchmarks). */
  get requestCount(): number {
    return this.#s.requests;
  }

  hasBlobs(hashes: string[], opts: CallOptions = {}): Promise<Set<string>> {
    return this.#blobs.has(hashes, opts.signal);
  }

  putBlob(hash: string, source: BlobSource, opts: CallOptions = {}): Promise<void> {
    return this.#blobs.put(hash, source, opts.signal);
  }

  getBlob(hash: string, opts: GetBlobOptions = {}): Promise<ReadableStream<Uint8Array>> {
    return this.#blobs.get(hash, opts.range, opts.signal);
  }

  listBlobs(opts: ListOptions = {}): Promise<Page<BlobListing>> {
    return this.#blobs.list(opts.cursor, opts.signal);
  }

  deleteBlob(hash: string, opts: CallOptions = {}): Promise<void> {
    return this.#blobs.delete(hash, opts.signal);
  }

  async getRecord(key: string, opts: CallOptions = {}): Promise<StoredRecord | null> {
    const at = this.#at(key);
    return await this.#s.run(`read record ${key}`, async (abortSignal) => {
      const out = await this.#s.client.send(new GetObjectCommand(at), { abortSignal });
      const stored = (await out.Body?.transformToByteArray()) ?? new Uint8Array();
      const storeNowMs = serverDateOf(out);
      return {
        bytes: unseal(stored, out.Metadata?.[WRITE_ID_META]),
        version: unquote(out.ETag),
        ...(out.LastModified === undefined ? {} : { modifiedMs: out.LastModified.getTime() }),
        ...(storeNowMs === undefined ? {} : { storeNowMs }),
      };
    }, { signal: opts.signal, expect: (err) => (isNoSuchKey(err) ? null : undefined) });
  }

  createRecord(key: string, bytes: Uint8Array, opts: CallOptions = {}): Promise<string | null> {
    return this.#put(key, bytes, { IfNoneMatch: "*" }, opts);
  }

  replaceRecord(
    key: string,
    bytes: Uint8Array,
    version: string,
    opts: CallOptions = {},
  ): Promise<string | null> {
    return this.#put(key, bytes, { IfMatch: `"${version}"` }, opts);
  }

  async deleteRecord(key: string, version: string, opts: CallOptions = {}): Promise<boolean> {
    const cmd = new DeleteObjectCommand({ ...this.#at(key), IfMatch: `"${version}"` });
    const done = await this.#s.send(`delete record ${key}`, cmd, {
      signal: opts.signal,
      expect: lost,
    });
    return done !== null;
  }

  /**
   * One ListObjectsV2 page of the records under `prefix`; objects under
   * `blobs/` are no records, and a listing that reaches them jumps past.
   */
  async listRecords(prefix: string, opts: ListOptions = {}): Promise<Page<RecordListing>> {
    if (prefix.startsWith("blobs/")) return { items: [] };
    for (let after = opts.cursor;;) {
      const got = await this.#s.list(prefix, after, opts.signal);
      const items = got.objects.flatMap((o) =>
        o.rel.startsWith("blobs/") || o.rel.endsWith("/")
          ? []
          : [{ key: o.rel, version: o.etag, modifiedMs: o.modifiedMs }]
      );
      after = got.more?.startsWith("blobs/") && got.more < "blobs/~" ? "blobs/~" : got.more;
      if (after === undefined || items.length > 0) return { items, cursor: after };
    }
  }

  describe(): { type: string; location: string } {
    return { type: this.type, location: this.#s.where };
  }

  capabilities(): Capabilities {
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
  open(opts: CallOptions = {}): Promise<void> {
    opts.signal?.throwIfAborted();
    return Promise.resolve();
  }

  /** HEAD bucket (buckets are never created here): `NotFoundError` naming it when missing. */
  async init(opts: CallOptions = {}): Promise<void> {
    const cmd = new HeadBucketCommand({ Bucket: this.#s.bucket });
    const found = await this.#s.send("init", cmd, { signal: opts.signal, expect: noKey(false) });
    if (found === false) {
      throw new NotFoundError(
        `Cannot init the s3 datastore ${this.#s.where}: bucket ${this.#s.bucket} does not ` +
          `exist. Create it, or fix the datastore spec.`,
      );
    }
  }

  close(): Promise<void> {
    this.#s.client.destroy();
    return Promise.resolve();
  }

  /** A conditional PUT of a sealed record: its new version, or null when the condition failed. */
  async #put(
    key: string,
    bytes: Uint8Array,
    condition: { IfNoneMatch: "*" } | { IfMatch: string },
    opts: CallOptions,
  ): Promise<string | null> {
    const id = randomBytes(16).toString("hex");
    const cmd = new PutObjectCommand({
      ...this.#at(key),
      Body: seal(bytes, id),
      Metadata: { [WRITE_ID_META]: id },
      ...condition,
    });
    const out = await this.#s.send(`write record ${key}`, cmd, {
      signal: opts.signal,
      bytes: bytes.length,
      expect: lost,
    });
    if (out === null || out.ETag !== undefined) return out && unquote(out.ETag);
    throw new DatastoreError(
      `The s3 datastore ${this.#s.where} answered a write of ${key} without an ETag: use an ` +
        `endpoint that supports conditional writes (AWS S3, MinIO, Cloudflare R2).`,
    );
  }

  #at(key: string): { Bucket: string; Key: string } {
    if (!RECORD_KEY.test(key)) throw new Error(`Invalid record key ${JSON.stringify(key)}.`);
    return this.#s.at(key);
  }
}

/** A lost race, or a record that is gone: the condition failed. */
const lost = (err: unknown) => (isLostRace(err) || isNoSuchKey(err) ? null : undefined);
const noKey = <T>(answer: T) => (err: unknown) => (isNoSuchKey(err) ? answer : undefined);
