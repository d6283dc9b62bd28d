/**
 * The blob half of the S3 provider: `blobs/AB/SHA256`, immutable, created
 * with `If-None-Match: *`, checked against its name before it can become
 * visible; hashes known to be stored are remembered (design/s3.md, "Blobs").
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { Readable } from "node:stream";
import * as S3 from "@aws-sdk/client-s3";
import { runPool } from "../../async.ts";
import {
  BLOB_HASH,
  checkBlobHash,
  checkedChunks,
  missingBlob,
  readCheckedSource,
} from "../../provider/blob_source.ts";
import type * as C from "../../provider/contract.ts";
import { conditionFailed, noKey, s3Fail, type S3Store } from "./client.ts";
import { ByteBudget, PART_BUDGET_BYTES, putMultipart } from "./multipart.ts";

const MiB = 1024 * 1024;
/** Files up to this size are read whole (synchronously up to 64 KiB) and checked before sending. */
export const SMALL_BLOB_BYTES = 8 * MiB;
/** Files over this size go up in parallel parts of 8 MiB (more for files over ~78 GiB). */
export const MULTIPART_BYTES = 64 * MiB;
/** A `has` asking about this many hashes first lists the whole blobs area, */
export const SWEEP_MIN_HASHES = 32;
/** at most one page per this many asked hashes (50 pages at most). */
export const SWEEP_HASHES_PER_PAGE = 8;
/** Most hashes remembered (about 10 MB), and for how long (far below gc's grace period). */
const MAX_KNOWN = 100_000;
const CACHE_MS = 30 * 60_000;
const EMPTY = () => new ReadableStream<Uint8Array>({ start: (c) => c.close() });

/** The key of a blob below the datastore prefix. */
export const blobRel = (hash: string) => `blobs/${hash.slice(0, 2)}/${hash}`;

/** The hash of a blob key, only for a blob at its own key (never a stray name). */
function hashOf(rel: string): string | undefined {
  const hash = rel.slice(9);
  return BLOB_HASH.test(hash) && rel === blobRel(hash) ? hash : undefined;
}

/** The blob primitives of an S3 datastore. */
export class S3Blobs {
  protected readonly s3: S3Store;
  /** Hashes known to be stored (uploaded, found or listed), and shards (`AB`) listed in full. */
  readonly #known = new Set<string>();
  readonly #complete = new Set<string>();
  /** Shard listings in flight, shared by concurrent callers; the one whole-area listing. */
  readonly #listing = new Map<string, Promise<Set<string>>>();
  #sweep: Promise<void> | undefined;
  #since = performance.now();
  /** Bytes of multipart parts in flight, shared by this provider's uploads. */
  readonly #parts: ByteBudget;

  constructor(s3: S3Store, opts: { partBudgetBytes?: number } = {}) {
    this.s3 = s3;
    this.#parts = new ByteBudget(opts.partBudgetBytes ?? PART_BUDGET_BYTES);
  }

  /**
   * Which of `hashes` are stored: from memory when known; a first large ask
   * lists the whole area once (within a page budget); a shard with two or
   * more asked hashes is listed; an isolated hash gets a HEAD. With `fresh`,
   * memory is bypassed: a HEAD per hash (16 at a time), and a missing one
   * is forgotten as stored.
   */
  async hasBlobs(hashes: string[], opts: C.HasBlobsOptions = {}): Promise<Set<string>> {
    const { signal } = opts;
    const unique = new Set(hashes);
    for (const h of unique) checkBlobHash(h);
    if (opts.fresh) {
      const found = new Set<string>();
      await runPool([...unique], { jobs: 16, signal }, async (h) => {
        if (await this.#head(h, signal)) found.add(h);
        else this.#known.delete(h); // gc removed it since it was learnt
      });
      return found;
    }
    if (performance.now() - this.#since > CACHE_MS) {
      this.#known.clear();
      this.#complete.clear();
      this.#since = performance.now();
    }
    if (this.#sweep === undefined && unique.size >= SWEEP_MIN_HASHES) {
      this.#sweep = this.#sweepArea(Math.min(50, unique.size / SWEEP_HASHES_PER_PAGE), signal);
    }
    await this.#sweep?.catch(() => {}); // a failed sweep only means fewer answers from memory
    const found = new Set([...unique].filter((h) => this.#known.has(h)));
    const ask = [...unique].filter((h) => !found.has(h) && !this.#complete.has(h.slice(0, 2)));
    const byShard = [...Map.groupBy(ask, (h) => h.slice(0, 2))];
    await runPool(byShard, { jobs: 16, signal }, async ([shard, list]) => {
      if (list.length === 1 && !this.#listing.has(shard)) {
        if (await this.#head(list[0], signal)) found.add(list[0]);
      } else {
        const names = await this.#shardNames(shard, signal);
        for (const h of list) if (names.has(h)) found.add(h);
      }
    });
    return found;
  }

  /** Remembers stored hashes and shards listed in full, unless that is too many names. */
  #learn(hashes: string[], shards: string[] = []): void {
    if (this.#known.size + hashes.length > MAX_KNOWN) return;
    for (const h of hashes) this.#known.add(h);
    for (const s of shards) this.#complete.add(s);
  }

  /** Lists `rel` from its start until its end or `enough(pages, lastKey)`. */
  async #scan(rel: string, signal?: AbortSignal, enough = (_p: number, _k: string) => false) {
    const hashes: string[] = [];
    for (let page = 1, after: string | undefined;; page++) {
      const got = await this.s3.list(rel, after, signal);
      hashes.push(...got.objects.flatMap((o) => hashOf(o.rel) ?? []));
      after = got.more;
      if (after === undefined || enough(page, after)) return { hashes, after };
    }
  }

  /**
   * Lists `blobs/` from its start, stopping after `pages` pages or once the
   * share of the (uniform) key space read shows the area is longer; the
   * shards before the last key read are then known in full.
   */
  async #sweepArea(pages: number, signal?: AbortSignal): Promise<void> {
    const { hashes, after } = await this.#scan("blobs/", signal, (page, key) => {
      return page >= pages || page * 65_536 / (parseInt(key.slice(9, 13), 16) + 1) > pages;
    });
    const upTo = after === undefined ? 256 : parseInt(after.slice(6, 8), 16) || 0;
    this.#learn(hashes, Array.from({ length: upTo }, (_, i) => i.toString(16).padStart(2, "0")));
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
    const cmd = new S3.HeadObjectCommand(this.s3.at(blobRel(hash)));
    const found = await this.s3.send(`check blob ${hash}`, cmd, { signal, expect: noKey(false) });
    if (found !== false) this.#learn([hash]);
    return found !== false;
  }

  /** Stores a blob unless it is there, verifying its content hashes to `hash`. */
  async putBlob(hash: string, source: C.BlobSource, opts: C.CallOptions = {}): Promise<void> {
    const { signal } = opts;
    checkBlobHash(hash);
    signal?.throwIfAborted();
    if (source.kind === "bytes" || source.size <= SMALL_BLOB_BYTES) {
      const bytes = await readCheckedSource(hash, source);
      return await this.#putSingle(hash, bytes, bytes.length, signal);
    }
    if (source.size > MULTIPART_BYTES) return await this.#putMultipart(hash, source, signal);
    // A mismatch found while sending aborts the request before its last
    // chunk: the server never has the whole body, so it stores nothing.
    const stop = new AbortController();
    let changed: unknown;
    const body = Readable.from((async function* () {
      try {
        yield* checkedChunks(hash, source, MiB);
      } catch (err) {
        changed = err;
        stop.abort(err);
      }
    })());
    const both = signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal]);
    await this.#putSingle(hash, body, source.size, both).catch((err) => {
      throw changed ?? err;
    });
  }

  async #putSingle(hash: string, Body: Uint8Array | Readable, size: number, signal?: AbortSignal) {
    const cmd = new S3.PutObjectCommand({
      ...this.s3.at(blobRel(hash)),
      Body,
      ContentLength: size,
      ChecksumSHA256: Buffer.from(hash, "hex").toString("base64"),
      IfNoneMatch: "*", // 412: already stored, which is success
      ContentType: "application/octet-stream",
    });
    await this.s3.send(`store blob ${hash}`, cmd, { signal, bytes: size, expect: conditionFailed });
    this.#learn([hash]);
  }

  /**
   * Uploads a large file in parts sent in parallel (./multipart.ts), HEAD
   * first: an existing blob is not sent again.
   */
  async #putMultipart(hash: string, source: { path: string; size: number }, signal?: AbortSignal) {
    if (await this.#head(hash, signal)) return;
    await putMultipart(this.s3, blobRel(hash), hash, source, { budget: this.#parts, signal });
    this.#learn([hash]);
  }

  /** Streams a blob or a range of it; NotFoundError when missing. */
  async getBlob(hash: string, opts: C.GetBlobOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const { signal, range } = opts;
    checkBlobHash(hash);
    const what = `read blob ${hash}`;
    const missing = () => missingBlob(hash, this.s3.where);
    if (range !== undefined && range.length <= 0) {
      if (!(await this.#head(hash, signal))) throw missing();
      return EMPTY();
    }
    const cmd = new S3.GetObjectCommand({
      ...this.s3.at(blobRel(hash)),
      ...(range && { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` }),
    });
    // A range that starts past the end has no bytes.
    const pastEnd = (e: unknown) => ((e as Error)?.name === "InvalidRange" ? true : undefined);
    const out = await this.s3.send(what, cmd, {
      signal,
      expect: (e) => noKey(false)(e) ?? (range && pastEnd(e)),
    });
    if (out === true) return EMPTY();
    if (out === false || out.Body === undefined) throw missing();
    // A fault mid-stream (reset, timeout) becomes a retryable DatastoreError.
    const reader = (out.Body.transformToWebStream() as ReadableStream<Uint8Array>).getReader();
    return new ReadableStream<Uint8Array>({
      pull: (controller) =>
        reader.read().then(
          ({ done, value }) => done ? controller.close() : controller.enqueue(value),
          (err) => controller.error(s3Fail(err, this.s3, what)),
        ),
      cancel: (reason) => reader.cancel(reason),
    });
  }

  /** One page of stored blobs (a page that held only stray names reads on). */
  async listBlobs(opts: C.ListOptions = {}): Promise<C.Page<C.BlobListing>> {
    for (let after = opts.cursor;;) {
      const got = await this.s3.list("blobs/", after, opts.signal);
      const items = got.objects.flatMap((o) => {
        const hash = hashOf(o.rel);
        return hash === undefined ? [] : [{ hash, size: o.size, modifiedMs: o.modifiedMs }];
      });
      if (got.more === undefined || items.length > 0) return { items, cursor: got.more };
      after = got.more;
    }
  }

  /** Deletes a blob; a missing one is fine. */
  async deleteBlob(hash: string, opts: C.CallOptions = {}): Promise<void> {
    checkBlobHash(hash);
    this.#known.delete(hash);
    const cmd = new S3.DeleteObjectCommand(this.s3.at(blobRel(hash)));
    await this.s3.send(`delete blob ${hash}`, cmd, { signal: opts.signal, expect: noKey(null) });
  }
}
