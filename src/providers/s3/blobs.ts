/**
 * Blobs of the S3 provider: `blobs/AB/SHA256`, immutable, created with
 * `If-None-Match: *` (412 = already stored = success), their content checked
 * against their name before it can become visible, and the hashes known to
 * be stored remembered (design/s3.md, "Blobs" and "hasBlobs").
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
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { runPool } from "../../async.ts";
import { ContentChangedError, NotFoundError } from "../../errors.ts";
import { hashBytes } from "../../model/hash.ts";
import type { BlobListing, BlobSource, ByteRange, Page } from "../../provider/contract.ts";
import { isLostRace, isNoSuchKey, s3Fail, type S3Store } from "./client.ts";

const SHA256 = /^[0-9a-f]{64}$/;
/** Files up to this size are read with synchronous calls (as the scan reads them). */
const SYNC_READ_BYTES = 64 * 1024;
/** Files up to this size are read whole and checked before they are sent. */
export const SMALL_BLOB_BYTES = 8 * 1024 * 1024;
/** Files over this size are uploaded in parts. */
export const MULTIPART_BYTES = 64 * 1024 * 1024;
/** Smallest part; larger for files that would need more than 10,000 parts. */
const PART_BYTES = 8 * 1024 * 1024;
const CHUNK = 1024 * 1024;
/** A `has` call asking about this many hashes first lists the whole blobs area once, */
export const SWEEP_MIN_HASHES = 32;
/** reading at most one page per this many asked hashes (and 50 pages). */
export const SWEEP_HASHES_PER_PAGE = 8;
/** Most hashes remembered (about 10 MB). */
const MAX_KNOWN = 100_000;
/** How long what `has` learnt is trusted (far below gc's grace period). */
const CACHE_MS = 30 * 60_000;
const EMPTY = () => new ReadableStream<Uint8Array>({ start: (c) => c.close() });
const hex2 = (i: number) => i.toString(16).padStart(2, "0");

function checkHash(hash: string): void {
  if (!SHA256.test(hash)) {
    throw new Error(`Invalid blob hash ${JSON.stringify(hash)}: expected 64 lowercase hex digits.`);
  }
}

/** The key of a blob below the datastore prefix. */
export function blobRel(hash: string): string {
  return `blobs/${hash.slice(0, 2)}/${hash}`;
}

/** The hash of a blob key, only for a blob at its own key (never a stray name). */
function hashOf(rel: string): string | undefined {
  const hash = rel.slice(9);
  return SHA256.test(hash) && rel === blobRel(hash) ? hash : undefined;
}

/** The blobs area of one S3 datastore. */
export class S3BlobStore {
  readonly #s: S3Store;
  /** Hashes known to be stored: uploaded, found by HEAD, or listed. */
  readonly #known = new Set<string>();
  /** Shards (`AB`) listed in full: a hash of one not in #known was not stored then. */
  readonly #complete = new Set<string>();
  /** Shard listings in flight, shared by concurrent callers. */
  readonly #listing = new Map<string, Promise<Set<string>>>();
  /** The one listing of the whole area, once started. */
  #sweep: Promise<void> | undefined;
  #since = performance.now();

  constructor(store: S3Store) {
    this.#s = store;
  }

  /**
   * Which of `hashes` are stored: from memory when known; a first large ask
   * lists the whole area once (within a page budget); a shard with two or
   * more asked hashes is listed; an isolated hash gets a HEAD.
   */
  async has(hashes: readonly string[], signal?: AbortSignal): Promise<Set<string>> {
    const unique = new Set(hashes);
    for (const h of unique) checkHash(h);
    if (performance.now() - this.#since > CACHE_MS) {
      this.#known.clear();
      this.#complete.clear();
      this.#since = performance.now();
    }
    if (this.#sweep === undefined && unique.size >= SWEEP_MIN_HASHES) {
      this.#sweep = this.#sweepArea(Math.min(50, unique.size / SWEEP_HASHES_PER_PAGE), signal);
    }
    await this.#sweep?.catch(() => {}); // a failed sweep only means fewer answers from memory
    const found = new Set<string>();
    const byShard = new Map<string, string[]>();
    for (const h of unique) {
      if (this.#known.has(h)) found.add(h);
      else if (!this.#complete.has(h.slice(0, 2))) {
        byShard.set(h.slice(0, 2), [...byShard.get(h.slice(0, 2)) ?? [], h]);
      }
    }
    await runPool([...byShard], { jobs: 16, signal }, async ([shard, list]) => {
      if (list.length === 1 && !this.#listing.has(shard)) {
        if (await this.#head(list[0], signal)) found.add(list[0]);
        return;
      }
      const names = await this.#shardNames(shard, signal);
      for (const h of list) if (names.has(h)) found.add(h);
    });
    return found;
  }

  /** Remembers stored hashes and shards listed in full, unless that is too many names. */
  #learn(hashes: Iterable<string>, shards: string[] = []): void {
    const list = [...hashes];
    if (this.#known.size + list.length > MAX_KNOWN) return;
    for (const h of list) this.#known.add(h);
    for (const s of shards) this.#complete.add(s);
  }

  /** Lists `rel` from its start until its end (true) or `enough(pages, lastRel)`. */
  async #scan(rel: string, signal?: AbortSignal, enough = (_p: number, _l: string) => false) {
    const hashes: string[] = [];
    let after: string | undefined;
    for (let page = 1;; page++) {
      const got = await this.#s.list(rel, after, signal);
      for (const o of got.objects) {
        const hash = hashOf(o.rel);
        if (hash !== undefined) hashes.push(hash);
      }
      after = got.more;
      if (after === undefined || enough(page, after)) return { hashes, last: after };
    }
  }

  /**
   * Lists `blobs/` from its start, stopping after `pages` pages or as soon as
   * the share of the (uniform) key space read shows the area is longer; the
   * shards before the last key read are then known in full.
   */
  async #sweepArea(pages: number, signal?: AbortSignal): Promise<void> {
    const { hashes, last } = await this.#scan("blobs/", signal, (page, rel) => {
      return page >= pages || page * 65_536 / (parseInt(rel.slice(9, 13), 16) + 1) > pages;
    });
    const upTo = last === undefined ? 256 : parseInt(last.slice(6, 8), 16) || 0;
    this.#learn(hashes, Array.from({ length: upTo }, (_, i) => hex2(i)));
  }

  /** The hashes stored in a shard: one listing, shared by concurrent callers. */
  async #shardNames(shard: string, signal?: AbortSignal): Promise<Set<string>> {
    const running = this.#listing.get(shard);
    if (running !== undefined) {
      try {
        return await running;
      } catch { /* that caller's listing failed or was aborted: list again */ }
    }
    const p = this.#scan(`blobs/${shard}/`, signal).then(({ hashes }) => {
      this.#learn(hashes, [shard]);
      return new Set(hashes);
    });
    this.#listing.set(shard, p);
    try {
      return await p;
    } finally {
      if (this.#listing.get(shard) === p) this.#listing.delete(shard);
    }
  }

  async #head(hash: string, signal?: AbortSignal): Promise<boolean> {
    const cmd = new HeadObjectCommand(this.#s.at(blobRel(hash)));
    const found = await this.#s.send(`check blob ${hash}`, cmd, { signal, expect: noKey(false) });
    if (found !== false) this.#learn([hash]);
    return found !== false;
  }

  /** Stores a blob unless it is there, verifying its content hashes to `hash`. */
  async put(hash: string, source: BlobSource, signal?: AbortSignal): Promise<void> {
    checkHash(hash);
    signal?.throwIfAborted();
    if (source.kind === "bytes") {
      verify(hash, hashBytes(source.bytes), source.bytes.byteLength, "the given bytes");
      return await this.#putSingle(hash, source.bytes, source.bytes.byteLength, signal);
    }
    if (source.size <= SMALL_BLOB_BYTES) {
      const bytes = await readAtMost(source.path, source.size + 1);
      verify(hash, hashBytes(bytes), bytes.byteLength, source.path, source.size);
      return await this.#putSingle(hash, bytes, bytes.byteLength, signal);
    }
    if (source.size > MULTIPART_BYTES) return await this.#putMultipart(hash, source, signal);
    // A mismatch found while sending aborts the request before its last
    // chunk: the server never has the whole body, so it stores nothing.
    const stop = new AbortController();
    let changed: ContentChangedError | undefined;
    using file = await Deno.open(source.path, { read: true });
    const body = Readable.from(checkedChunks(file, hash, source, (err) => {
      changed = err;
      stop.abort(err);
    }, signal));
    const both = signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal]);
    await this.#putSingle(hash, body, source.size, both).catch((err) => {
      throw changed ?? err;
    });
  }

  async #putSingle(hash: string, Body: Uint8Array | Readable, size: number, signal?: AbortSignal) {
    await this.#s.send(
      `store blob ${hash}`,
      new PutObjectCommand({
        ...this.#s.at(blobRel(hash)),
        Body,
        ContentLength: size,
        ChecksumSHA256: Buffer.from(hash, "hex").toString("base64"),
        IfNoneMatch: "*",
        ContentType: "application/octet-stream",
      }),
      { signal, bytes: size, expect: (err) => changedCause(err) ?? lost(err) },
    ).then((out) => {
      if (out instanceof ContentChangedError) throw out;
    });
    this.#learn([hash]);
  }

  /**
   * Uploads a large file in parts (HEAD first: an existing blob is not sent
   * again); the whole-file hash is checked before the conditional
   * `CompleteMultipartUpload`.
   */
  async #putMultipart(hash: string, source: { path: string; size: number }, signal?: AbortSignal) {
    if (await this.#head(hash, signal)) return;
    const at = this.#s.at(blobRel(hash));
    const what = `store blob ${hash}`;
    const created = await this.#s.send(
      what,
      new CreateMultipartUploadCommand({ ...at, ChecksumAlgorithm: "SHA256" }),
      { signal },
    );
    const UploadId = created.UploadId;
    let completed = false;
    try {
      const partSize = Math.max(PART_BYTES, Math.ceil(source.size / 10_000 / CHUNK) * CHUNK);
      const whole = createHash("sha256");
      const Parts: { PartNumber: number; ETag?: string; ChecksumSHA256?: string }[] = [];
      using file = await Deno.open(source.path, { read: true });
      let total = 0;
      for (let PartNumber = 1;; PartNumber++) {
        const Body = await readUpTo(file, partSize);
        whole.update(Body);
        total += Body.length;
        if (total > source.size || (Body.length === 0 && PartNumber > 1)) break;
        const ChecksumSHA256 = createHash("sha256").update(Body).digest("base64");
        const up = await this.#s.send(
          what,
          new UploadPartCommand({ ...at, UploadId, PartNumber, Body, ChecksumSHA256 }),
          { signal, bytes: Body.length },
        );
        Parts.push({ PartNumber, ETag: up.ETag, ChecksumSHA256 });
        if (Body.length < partSize) break;
      }
      // Never complete an object whose content does not hash to its name.
      verify(hash, total > source.size ? "" : whole.digest("hex"), total, source.path, source.size);
      const complete = new CompleteMultipartUploadCommand({
        ...at,
        UploadId,
        MultipartUpload: { Parts },
        IfNoneMatch: "*",
      });
      // A lost race: stored meanwhile by someone else; our parts are aborted.
      completed = (await this.#s.send(what, complete, { signal, expect: lost })) !== null;
      this.#learn([hash]);
    } finally {
      if (!completed) {
        await this.#s.client.send(new AbortMultipartUploadCommand({ ...at, UploadId }))
          .catch(() => {});
      }
    }
  }

  /** Streams a blob or a range of it; NotFoundError when missing. */
  async get(hash: string, range?: ByteRange, signal?: AbortSignal) {
    checkHash(hash);
    const what = `read blob ${hash}`;
    const missing = new NotFoundError(
      `Blob ${hash} is missing from the datastore ${this.#s.where}: push the model that names ` +
        `it again from a repository that has the file.`,
    );
    if (range !== undefined && range.length <= 0) {
      if (!(await this.#head(hash, signal))) throw missing;
      return EMPTY();
    }
    const out = await this.#s.send(
      what,
      new GetObjectCommand({
        ...this.#s.at(blobRel(hash)),
        ...(range && { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` }),
      }),
      // A range that starts past the end: no bytes.
      {
        signal,
        expect: (e) => (isNoSuchKey(e) ? 0 : (e as Error)?.name === "InvalidRange" ? 1 : undefined),
      },
    );
    if (out === 1) return EMPTY();
    if (out === 0 || out.Body === undefined) throw missing;
    // A fault mid-stream (reset, timeout) becomes a retryable DatastoreError.
    const reader = (out.Body.transformToWebStream() as ReadableStream<Uint8Array>).getReader();
    return new ReadableStream<Uint8Array>({
      pull: (controller) =>
        reader.read().then(
          ({ done, value }) => done ? controller.close() : controller.enqueue(value),
          (err) => controller.error(s3Fail(err, this.#s, what)),
        ),
      cancel: (reason) => reader.cancel(reason),
    });
  }

  /** One page of stored blobs (a page that held only stray names reads on). */
  async list(cursor?: string, signal?: AbortSignal): Promise<Page<BlobListing>> {
    for (let after = cursor;;) {
      const got = await this.#s.list("blobs/", after, signal);
      const items = got.objects.flatMap((o) => {
        const hash = hashOf(o.rel);
        return hash === undefined ? [] : [{ hash, size: o.size, modifiedMs: o.modifiedMs }];
      });
      if (got.more === undefined || items.length > 0) return { items, cursor: got.more };
      after = got.more;
    }
  }

  /** Deletes a blob; a missing one is fine. */
  async delete(hash: string, signal?: AbortSignal): Promise<void> {
    checkHash(hash);
    this.#known.delete(hash);
    const cmd = new DeleteObjectCommand(this.#s.at(blobRel(hash)));
    await this.#s.send(`delete blob ${hash}`, cmd, { signal, expect: noKey(null) });
  }
}

/** `expect` answers: a lost race, or a missing key. */
const lost = (err: unknown) => (isLostRace(err) ? null : undefined);
const noKey = <T>(answer: T) => (err: unknown) => (isNoSuchKey(err) ? answer : undefined);

/** Up to `max` bytes from the file's position (fewer only at its end). */
async function readUpTo(file: Deno.FsFile, max: number, sync = false): Promise<Uint8Array> {
  const buf = new Uint8Array(max);
  let got = 0;
  while (got < max) {
    const n = sync ? file.readSync(buf.subarray(got)) : await file.read(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** Up to `max` bytes of a file (one that grew is never read whole); small ones synchronously. */
async function readAtMost(path: string, max: number): Promise<Uint8Array> {
  const sync = max <= SYNC_READ_BYTES + 1;
  using file = sync ? Deno.openSync(path, { read: true }) : await Deno.open(path, { read: true });
  return await readUpTo(file, max, sync);
}

function verify(hash: string, got: string, size: number, what: string, expectSize?: number): void {
  if (got === hash && (expectSize === undefined || size === expectSize)) return;
  throw new ContentChangedError(
    `${what} does not hash to ${hash} (it changed since it was scanned, ${size} bytes read): ` +
      `nothing was stored. Rerun once the file no longer changes.`,
  );
}

/**
 * A file's chunks, hashed as read, with the last one held back until the
 * whole content hashed to `hash`: on a mismatch (or a size change) the
 * stream ends early, so the request body is never complete.
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
  for (let chunk; !signal?.aborted && (chunk = await readUpTo(file, CHUNK)).length > 0;) {
    total += chunk.length;
    if (total > source.size) break; // grew: fails the check below
    h.update(chunk);
    if (held !== undefined) yield held;
    held = chunk;
  }
  if (signal?.aborted) return;
  try {
    verify(hash, total > source.size ? "" : h.digest("hex"), total, source.path, source.size);
  } catch (err) {
    return onMismatch(err as ContentChangedError); // the last chunk is never sent
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
