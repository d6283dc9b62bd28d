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
  PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { ContentChangedError, NotFoundError } from "../../errors.ts";
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

function b64(hexHash: string): string {
  return Buffer.from(hexHash, "hex").toString("base64");
}

/** The blobs area of one S3 datastore. */
export class S3BlobStore {
  readonly #a: BlobArea;

  constructor(area: BlobArea) {
    this.#a = area;
  }

  /**
   * Which of `hashes` are stored. A shard (`blobs/AB/`) holding two or more
   * of the asked hashes is listed (one request per 1,000 keys in it); an
   * isolated hash gets a HEAD.
   */
  async has(hashes: readonly string[], signal?: AbortSignal): Promise<Set<string>> {
    const byShard = new Map<string, string[]>();
    for (const h of new Set(hashes)) {
      checkHash(h);
      const shard = h.slice(0, 2);
      const list = byShard.get(shard);
      if (list === undefined) byShard.set(shard, [h]);
      else list.push(h);
    }
    const found = new Set<string>();
    await runPool([...byShard], { jobs: HAS_CONCURRENCY, signal }, async ([shard, list]) => {
      if (list.length === 1) {
        if (await this.#head(list[0], signal)) found.add(list[0]);
        return;
      }
      const names = await this.#listShard(shard, signal);
      for (const h of list) if (names.has(h)) found.add(h);
    });
    return found;
  }

  async #head(hash: string, signal?: AbortSignal): Promise<boolean> {
    try {
      await this.#a.s3.client.send(
        new HeadObjectCommand({ Bucket: this.#a.bucket, Key: this.#a.key(blobRel(hash)) }),
        { abortSignal: signal },
      );
      return true;
    } catch (err) {
      if (isNoSuchKey(err)) return false;
      throw s3Fail(err, this.#a.fail(`check blob ${hash}`));
    }
  }

  async #listShard(shard: string, signal?: AbortSignal): Promise<Set<string>> {
    const prefix = this.#a.key(`blobs/${shard}/`);
    const names = new Set<string>();
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.#a.s3.client.send(
          new ListObjectsV2Command({
            Bucket: this.#a.bucket,
            Prefix: prefix,
            ContinuationToken: token,
          }),
          { abortSignal: signal },
        );
      } catch (err) {
        throw s3Fail(err, this.#a.fail(`list blobs ${shard}/`));
      }
      for (const o of page.Contents ?? []) {
        if (o.Key !== undefined) names.add(o.Key.slice(prefix.length));
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
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
      const bytes = await readAtMost(source.path, source.size + 1);
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
    } catch (err) {
      if (isPreconditionFailed(err)) return; // already stored: immutable, nothing to do
      throw changedCause(err) ?? s3Fail(err, this.#a.fail(`store blob ${hash}`));
    }
  }

  async #putMultipart(
    hash: string,
    source: { path: string; size: number },
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

function sha256hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
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
  source: { path: string; size: number },
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
    if (held !== undefined) yield held;
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
