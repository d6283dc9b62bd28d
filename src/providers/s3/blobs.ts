/**
 * Blob storage of the S3 provider: `blobs/AB/SHA256`, immutable and
 * content-addressed (design/s3.md).
 *
 * - A blob is created with `If-None-Match: *`, so a stored blob is never
 *   rewritten; a 412 means it is already there, which is success.
 * - Its content is checked against its name before it can become visible:
 *   the request carries `x-amz-checksum-sha256` (servers that enforce it
 *   refuse a mismatch), and the body is hashed while it is sent with the last
 *   chunk held back until the hash matched, so a file that changed during the
 *   upload aborts the request before the server has the whole body (moto does
 *   not enforce the checksum; this does not rely on it).
 * - Files over {@linkcode MULTIPART_BYTES} go up in parts; the whole-file hash
 *   is checked before `CompleteMultipartUpload` (itself conditional).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { ContentChangedError, NotFoundError } from "../../errors.ts";
import { hashBytes } from "../../model/hash.ts";
import type { BlobSource } from "../../provider/contract.ts";
import { runPool } from "../../async.ts";
import {
  type FailContext,
  isNoSuchKey,
  isPreconditionFailed,
  s3Fail,
  type S3Handle,
} from "./client.ts";

const SHA256 = /^[0-9a-f]{64}$/;
/** Files up to this size are read with synchronous calls (as the scan reads them). */
const SYNC_READ_BYTES = 64 * 1024;
/** Files up to this size are read in one piece and checked before sending. */
export const SMALL_BLOB_BYTES = 8 * 1024 * 1024;
/** Files over this size are uploaded in parts. */
export const MULTIPART_BYTES = 64 * 1024 * 1024;
/** Smallest part; larger for files that would need more than 10,000 parts. */
const PART_BYTES = 8 * 1024 * 1024;
const MAX_PARTS = 10_000;
const CHUNK = 1024 * 1024;
/** Parallel requests in `has`. */
const HAS_CONCURRENCY = 16;
/** A `has` call asking about this many hashes lists the whole blobs area once. */
export const SWEEP_MIN_HASHES = 32;
/** The whole-area listing reads at most one page (1,000 keys) per this many asked hashes. */
export const SWEEP_HASHES_PER_PAGE = 8;
/** Most blob names remembered (about 10 MB); beyond, answers are not cached. */
const MAX_KNOWN = 100_000;
/** Pages of the whole-area listing at most (its names must fit in MAX_KNOWN). */
const SWEEP_MAX_PAGES = 50;
/** How long `has` trusts what it learnt (a command; far below gc's grace period). */
const CACHE_MS = 30 * 60_000;

/** Where the blobs live and how to reach them. */
export interface BlobArea {
  s3: S3Handle;
  bucket: string;
  /** Key of a path under the datastore prefix. */
  key(rel: string): string;
  fail(what: string): FailContext;
  /** Deadline of one request that sends `bytes` (the guard's rule: +1 s per MiB). */
  timeoutFor(bytes: number): number;
}

function checkHash(hash: string): void {
  if (!SHA256.test(hash)) {
    throw new Error(`Invalid blob hash ${JSON.stringify(hash)}: expected 64 lowercase hex digits.`);
  }
}

/** The key of a blob below the datastore prefix. */
export function blobRel(hash: string): string {
  return `blobs/${hash.slice(0, 2)}/${hash}`;
}

/**
 * The objects under `rel` (below the datastore prefix), one ListObjectsV2
 * page (up to 1,000 keys) at a time; S3 errors mapped as every call's are.
 */
export async function* listPages(
  area: BlobArea,
  rel: string,
  opts: { what: string; signal?: AbortSignal },
): AsyncGenerator<ListObjectsV2CommandOutput, void> {
  const prefix = area.key(rel);
  let token: string | undefined;
  do {
    let page: ListObjectsV2CommandOutput;
    try {
      page = await area.s3.client.send(
        new ListObjectsV2Command({ Bucket: area.bucket, Prefix: prefix, ContinuationToken: token }),
        { abortSignal: opts.signal },
      );
    } catch (err) {
      throw s3Fail(err, area.fail(`list ${opts.what}`));
    }
    yield page;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
}

function b64(hexHash: string): string {
  return Buffer.from(hexHash, "hex").toString("base64");
}

/** The blobs area of one S3 datastore. */
export class S3BlobStore {
  readonly #a: BlobArea;
  /** Hashes known to be stored: uploaded, found by HEAD, or listed. */
  readonly #known = new Set<string>();
  /** Shards listed in full: a hash of one not in #known was not stored then. */
  readonly #complete = new Set<string>();
  /** Shard listings in flight, shared by concurrent callers. */
  readonly #listing = new Map<string, Promise<Set<string>>>();
  /** The one listing of the whole area (see `has`), once started. */
  #sweep: Promise<void> | undefined;
  /** When #known and #complete were started (performance.now()). */
  #since = performance.now();

  constructor(area: BlobArea) {
    this.#a = area;
  }

  /**
   * Which of `hashes` are stored (design/s3.md, "hasBlobs").
   *
   * - Hashes already known to be stored (uploaded, found or listed by this
   *   store in the last 30 minutes) and hashes of shards listed in full then
   *   are answered without a request. A blob is never deleted while a command runs (gc keeps blobs
   *   younger than its grace period), so a "stored" answer does not go stale;
   *   a "missing" one may (another writer stored it since), which costs only
   *   an upload answered 412 (already stored: success).
   * - A call asking about {@linkcode SWEEP_MIN_HASHES} or more hashes first
   *   lists the whole blobs area once per store, with at most one page per
   *   {@linkcode SWEEP_HASHES_PER_PAGE} asked hashes (50 at most): a first push to an empty
   *   or small datastore then costs one request for all its models. A longer
   *   area keeps what was listed (the shards before the last key are complete).
   * - Otherwise a shard (`blobs/AB/`) holding two or more of the asked hashes
   *   is listed (one request per 1,000 keys in it; concurrent callers share
   *   it); an isolated hash gets a HEAD.
   */
  async has(hashes: readonly string[], signal?: AbortSignal): Promise<Set<string>> {
    const unique = new Set(hashes);
    for (const h of unique) checkHash(h);
    if (performance.now() - this.#since > CACHE_MS) {
      // Forget answers older than that: they are asked again (gc grace is far longer).
      this.#known.clear();
      this.#complete.clear();
      this.#since = performance.now();
    }
    if (this.#sweep === undefined && unique.size >= SWEEP_MIN_HASHES) {
      const pages = Math.min(
        SWEEP_MAX_PAGES,
        Math.ceil(unique.size / SWEEP_HASHES_PER_PAGE),
      );
      this.#sweep = this.#sweepArea(pages, signal);
    }
    // A failed or aborted sweep only means fewer answers come from the cache.
    if (this.#sweep !== undefined) await this.#sweep.catch(() => {});
    const found = new Set<string>();
    const byShard = new Map<string, string[]>();
    for (const h of unique) {
      if (this.#known.has(h)) {
        found.add(h);
        continue;
      }
      const shard = h.slice(0, 2);
      if (this.#complete.has(shard)) continue; // listed in full: not stored then
      const list = byShard.get(shard);
      if (list === undefined) byShard.set(shard, [h]);
      else list.push(h);
    }
    await runPool([...byShard], { jobs: HAS_CONCURRENCY, signal }, async ([shard, list]) => {
      if (list.length === 1 && !this.#listing.has(shard)) {
        if (await this.#head(list[0], signal)) found.add(list[0]);
        return;
      }
      const names = await this.#shardNames(shard, signal);
      for (const h of list) if (names.has(h)) found.add(h);
    });
    return found;
  }

  /** Remembers that a blob is stored (it is never deleted while a command runs). */
  #stored(hash: string): void {
    if (this.#known.size < MAX_KNOWN) this.#known.add(hash);
  }

  /**
   * Lists `blobs/` from its start, at most `pages` pages (fewer when the first
   * ones show the area is longer than that): every shard before the last key
   * seen is then known in full (the listing is in key order).
   */
  async #sweepArea(pages: number, signal?: AbortSignal): Promise<void> {
    const prefix = this.#a.key("blobs/");
    let last = "";
    let page = 0;
    for await (const out of listPages(this.#a, "blobs/", { what: "blobs/", signal })) {
      for (const o of out.Contents ?? []) {
        if (o.Key === undefined) continue;
        last = o.Key.slice(prefix.length);
        // Only a blob at its own key counts ("AB/ABCD…"), never a stray name.
        const hash = last.slice(3);
        if (SHA256.test(hash) && last === blobRel(hash).slice(6)) this.#stored(hash);
      }
      if (!out.IsTruncated || out.NextContinuationToken === undefined) {
        for (let i = 0; i < 256; i++) this.#complete.add(i.toString(16).padStart(2, "0"));
        return;
      }
      // Keys are in order and hashes uniform: the share of the key space read
      // so far tells how many pages the whole area has. Stop at once when
      // that is over the budget (a large store: the shards answer better).
      const at = parseInt(last.slice(3, 7), 16);
      if (++page >= pages || (Number.isFinite(at) && page * 65_536 / (at + 1) > pages)) break;
    }
    if (this.#known.size >= MAX_KNOWN) return; // names were dropped: nothing is complete
    // Shards strictly before the one holding the last key were listed in full.
    const upTo = parseInt(last.slice(0, 2), 16);
    for (let i = 0; i < (Number.isNaN(upTo) ? 0 : upTo); i++) {
      this.#complete.add(i.toString(16).padStart(2, "0"));
    }
  }

  /** The names in a shard: one listing, shared by concurrent callers. */
  async #shardNames(shard: string, signal?: AbortSignal): Promise<Set<string>> {
    const running = this.#listing.get(shard);
    if (running !== undefined) {
      try {
        return await running;
      } catch { /* the other caller's listing failed (or was aborted): list again */ }
    }
    const p = this.#listShard(shard, signal);
    this.#listing.set(shard, p);
    try {
      const names = await p;
      if (this.#known.size + names.size <= MAX_KNOWN) {
        // Only blobs of this shard ("AB/ABCD…"): a stray name is never "stored".
        for (const h of names) if (SHA256.test(h) && h.startsWith(shard)) this.#known.add(h);
        this.#complete.add(shard);
      }
      return names;
    } finally {
      if (this.#listing.get(shard) === p) this.#listing.delete(shard);
    }
  }

  async #head(hash: string, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.#a.s3.client.send(
        new HeadObjectCommand({ Bucket: this.#a.bucket, Key: this.#a.key(blobRel(hash)) }),
        { abortSignal: signal },
      );
      this.#stored(hash);
      return true;
    } catch (err) {
      if (isNoSuchKey(err)) return false;
      throw s3Fail(err, this.#a.fail(`check blob ${hash}`));
    }
  }

  async #listShard(shard: string, signal?: AbortSignal): Promise<Set<string>> {
    const rel = `blobs/${shard}/`;
    const prefix = this.#a.key(rel);
    const names = new Set<string>();
    for await (const page of listPages(this.#a, rel, { what: rel, signal })) {
      for (const o of page.Contents ?? []) {
        if (o.Key !== undefined) names.add(o.Key.slice(prefix.length));
      }
    }
    return names;
  }

  /** Stores a blob unless it is there, verifying its content hashes to `hash`. */
  async put(hash: string, source: BlobSource, signal?: AbortSignal): Promise<void> {
    checkHash(hash);
    signal?.throwIfAborted();
    if (source.kind === "bytes") {
      verify(hash, sha256hex(source.bytes), source.bytes.byteLength, "the given bytes");
      return await this.#putSingle(hash, source.bytes, source.bytes.byteLength, signal);
    }
    if (source.size <= SMALL_BLOB_BYTES) {
      // A small file is read with synchronous calls, as the scan reads it:
      // four system calls where async reads cost thread-pool round trips.
      const bytes = source.size <= SYNC_READ_BYTES
        ? readAtMostSync(source.path, source.size + 1)
        : await readAtMost(source.path, source.size + 1);
      verify(hash, sha256hex(bytes), bytes.byteLength, source.path, source.size);
      return await this.#putSingle(hash, bytes, bytes.byteLength, signal);
    }
    if (source.size <= MULTIPART_BYTES) {
      // A mismatch found while sending aborts the request before its last
      // chunk: the server never has the whole body, so it stores nothing.
      const stop = new AbortController();
      let changed: ContentChangedError | undefined;
      const file = await Deno.open(source.path, { read: true });
      try {
        const body = Readable.from(checkedChunks(file, hash, source, (err) => {
          changed = err;
          stop.abort(err);
        }, signal));
        const both = signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal]);
        return await this.#putSingle(hash, body, source.size, both).catch((err) => {
          throw changed ?? err;
        });
      } finally {
        try {
          file.close();
        } catch { /* closed already */ }
      }
    }
    await this.#putMultipart(hash, source, signal);
  }

  async #putSingle(
    hash: string,
    body: Uint8Array | Readable,
    size: number,
    signal?: AbortSignal,
  ): Promise<void> {
    try {
      await this.#a.s3.client.send(
        new PutObjectCommand({
          Bucket: this.#a.bucket,
          Key: this.#a.key(blobRel(hash)),
          Body: body,
          ContentLength: size,
          ChecksumSHA256: b64(hash),
          IfNoneMatch: "*",
          ContentType: "application/octet-stream",
        }),
        { abortSignal: signal, requestTimeout: this.#a.timeoutFor(size) },
      );
      this.#stored(hash);
    } catch (err) {
      if (isPreconditionFailed(err)) return this.#stored(hash); // already stored: immutable
      throw changedCause(err) ?? s3Fail(err, this.#a.fail(`store blob ${hash}`));
    }
  }

  async #putMultipart(
    hash: string,
    source: { path: string; size: number; onRead?: (bytes: number) => void },
    signal?: AbortSignal,
  ): Promise<void> {
    // An existing blob is never rewritten; checking first also saves the upload.
    if (await this.#head(hash, signal)) return;
    const { client } = this.#a.s3;
    const Bucket = this.#a.bucket;
    const Key = this.#a.key(blobRel(hash));
    const fail = this.#a.fail(`store blob ${hash}`);
    let uploadId: string | undefined;
    try {
      const created = await client.send(
        new CreateMultipartUploadCommand({ Bucket, Key, ChecksumAlgorithm: "SHA256" }),
        { abortSignal: signal },
      );
      uploadId = created.UploadId;
      const partSize = Math.max(PART_BYTES, Math.ceil(source.size / MAX_PARTS / CHUNK) * CHUNK);
      const whole = createHash("sha256");
      const parts: { PartNumber: number; ETag?: string; ChecksumSHA256?: string }[] = [];
      using file = await Deno.open(source.path, { read: true });
      let total = 0;
      for (let n = 1;; n++) {
        signal?.throwIfAborted();
        const buf = new Uint8Array(partSize);
        let got = 0;
        while (got < partSize) {
          const r = await file.read(buf.subarray(got));
          if (r === null) break;
          got += r;
        }
        if (got === 0 && n > 1) break;
        const part = buf.subarray(0, got);
        whole.update(part);
        total += got;
        if (total > source.size) break;
        const partHash = createHash("sha256").update(part).digest("base64");
        const up = await client.send(
          new UploadPartCommand({
            Bucket,
            Key,
            UploadId: uploadId,
            PartNumber: n,
            Body: part,
            ContentLength: got,
            ChecksumSHA256: partHash,
          }),
          { abortSignal: signal, requestTimeout: this.#a.timeoutFor(got) },
        );
        parts.push({ PartNumber: n, ETag: up.ETag, ChecksumSHA256: partHash });
        source.onRead?.(got); // progress: one more part is stored
        if (got < partSize) break;
      }
      // Never complete an object whose content does not hash to its name.
      verify(hash, total > source.size ? "" : whole.digest("hex"), total, source.path, source.size);
      try {
        await client.send(
          new CompleteMultipartUploadCommand({
            Bucket,
            Key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
            IfNoneMatch: "*",
          }),
          { abortSignal: signal },
        );
        uploadId = undefined;
      } catch (err) {
        if (!isPreconditionFailed(err)) throw err;
        // Stored meanwhile by someone else: fine; our parts are aborted below.
      }
      this.#stored(hash);
    } catch (err) {
      throw s3Fail(err, fail);
    } finally {
      if (uploadId !== undefined) {
        await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId }))
          .catch(() => {});
      }
    }
  }

  /** Streams a blob; NotFoundError when missing. */
  async get(hash: string, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    checkHash(hash);
    let out;
    try {
      out = await this.#a.s3.client.send(
        new GetObjectCommand({ Bucket: this.#a.bucket, Key: this.#a.key(blobRel(hash)) }),
        { abortSignal: signal },
      );
    } catch (err) {
      if (isNoSuchKey(err)) {
        throw new NotFoundError(
          `Blob ${hash} is missing from the datastore ${this.#a.fail("").where}: push the model ` +
            `that names it again from a repository that has the file.`,
        );
      }
      throw s3Fail(err, this.#a.fail(`read blob ${hash}`));
    }
    if (out.Body === undefined) throw new NotFoundError(`Blob ${hash} came back without a body.`);
    // A fault mid-stream (reset, timeout) becomes a retryable DatastoreError.
    const reader = (out.Body.transformToWebStream() as ReadableStream<Uint8Array>).getReader();
    const fail = this.#a.fail(`read blob ${hash}`);
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (err) {
          controller.error(s3Fail(err, fail));
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    });
  }
}

/** Reads up to `max` bytes of a file (a file that grew is never read whole). */
async function readAtMost(path: string, max: number): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(max);
  let got = 0;
  while (got < max) {
    const n = await file.read(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** {@linkcode readAtMost} with synchronous calls (small files only: it blocks). */
function readAtMostSync(path: string, max: number): Uint8Array {
  using file = Deno.openSync(path, { read: true });
  const buf = new Uint8Array(max);
  let got = 0;
  while (got < max) {
    const n = file.readSync(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** SHA-256 in hex; small buffers in JavaScript (no native hash object per blob). */
function sha256hex(bytes: Uint8Array): string {
  return hashBytes(bytes);
}

function verify(hash: string, got: string, size: number, what: string, expectSize?: number): void {
  if (got === hash && (expectSize === undefined || size === expectSize)) return;
  throw new ContentChangedError(
    `${what} does not hash to ${hash} (it changed since it was scanned, ${size} bytes read): ` +
      `nothing was stored. Rerun once the file no longer changes.`,
  );
}

/**
 * Reads a file of `size` bytes in chunks, hashing them, and holds back the
 * last chunk until the whole content hashed to `hash`: on a mismatch (or a
 * size change) the stream fails before the request body is complete, so the
 * server never stores it.
 */
async function* checkedChunks(
  file: Deno.FsFile,
  hash: string,
  source: { path: string; size: number; onRead?: (bytes: number) => void },
  onMismatch: (err: ContentChangedError) => void,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const h = createHash("sha256");
  let held: Uint8Array | undefined;
  let total = 0;
  for (;;) {
    if (signal?.aborted) return;
    const buf = new Uint8Array(CHUNK);
    const n = await file.read(buf);
    if (n === null) break;
    const chunk = buf.subarray(0, n);
    total += n;
    if (total > source.size) break; // grew: fails the check below
    h.update(chunk);
    if (held !== undefined) {
      yield held;
      source.onRead?.(held.byteLength); // progress: the chunk was taken by the request
    }
    held = chunk;
  }
  try {
    verify(hash, total > source.size ? "" : h.digest("hex"), total, source.path, source.size);
  } catch (err) {
    onMismatch(err as ContentChangedError);
    return; // the request is aborted; the last chunk is never sent
  }
  if (held !== undefined) yield held;
}

/** A ContentChangedError raised inside the request body, if that is what failed. */
function changedCause(err: unknown): ContentChangedError | undefined {
  for (let e = err, i = 0; e !== undefined && e !== null && i < 5; i++) {
    if (e instanceof ContentChangedError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
