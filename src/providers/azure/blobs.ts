/**
 * The blob half of the Azure provider: `blobs/AB/SHA256`, block blobs
 * created with `If-None-Match: *`, checked against their name before they
 * can become visible; large files go up as blocks staged in parallel and
 * become visible only with the final Put Block List, sent once the whole
 * file hashed to its name (design/azure.md, "Blobs").
 *
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { runPool } from "../../async.ts";
import {
  BLOB_HASH,
  checkBlobHash,
  checkedChunks,
  missingBlob,
  readCheckedSource,
} from "../../provider/blob_source.ts";
import type * as C from "../../provider/contract.ts";
import { type AzureStore, errorOf, isExisting, noBlob } from "./client.ts";

const MiB = 1024 * 1024;
/** Files up to this size are read whole, checked, and sent in one Put Blob. */
export const SINGLE_PUT_BYTES = 8 * MiB;
/** Larger files are staged in blocks of this size (more for files over ~390 GiB). */
export const BLOCK_BYTES = 8 * MiB;
/** Blocks of one file in flight at once, and of all files of the provider. */
export const BLOCKS_PER_FILE = 4;
export const BLOCKS_IN_FLIGHT = 8;
/** A `hasBlobs` asking about this many hashes first lists the blobs area, */
export const SWEEP_MIN_HASHES = 32;
/** at most one page (5,000 names) per this many asked hashes (50 pages at most). */
export const SWEEP_HASHES_PER_PAGE = 32;
/** Most hashes remembered (about 10 MB), and for how long (far below gc's grace period). */
const MAX_KNOWN = 100_000;
const CACHE_MS = 30 * 60_000;
const EMPTY = () => new ReadableStream<Uint8Array>({ start: (c) => c.close() });

/** The name of a blob below the datastore prefix. */
export const blobRel = (hash: string) => `blobs/${hash.slice(0, 2)}/${hash}`;

/** The hash of a blob name, only for a blob at its own name (never a stray name). */
function hashOf(rel: string): string | undefined {
  const hash = rel.slice(9);
  return BLOB_HASH.test(hash) && rel === blobRel(hash) ? hash : undefined;
}

/** Tuning for tests (none is a user setting). */
export interface BlobTuning {
  singlePutBytes?: number;
  blockBytes?: number;
}

/** A counting semaphore: at most `n` holders at once. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }
  release(): void {
    const next = this.#waiting.shift();
    if (next === undefined) this.#free++;
    else next();
  }
}

/** The blob primitives of an Azure datastore. */
export class AzureBlobs {
  protected readonly az: AzureStore;
  readonly #tuning: Required<BlobTuning>;
  readonly #blockSlots = new Slots(BLOCKS_IN_FLIGHT);
  /** Hashes known to be stored (uploaded, found or listed). */
  readonly #known = new Set<string>();
  /** Every blob name up to this one was listed (`~`: the whole area). */
  #listedUpTo = "";
  #sweep: Promise<void> | undefined;
  #since = performance.now();

  constructor(az: AzureStore, tuning: BlobTuning = {}) {
    this.az = az;
    this.#tuning = {
      singlePutBytes: tuning.singlePutBytes ?? SINGLE_PUT_BYTES,
      blockBytes: tuning.blockBytes ?? BLOCK_BYTES,
    };
  }

  /**
   * Which of `hashes` are stored: from memory when known; a first large ask
   * lists the blobs area once (within a page budget), which also answers
   * "missing" for every name up to the last one listed; any other hash gets
   * a HEAD (Get Blob Properties), 16 at a time. With `fresh`, memory is
   * bypassed: a HEAD per hash, and a missing one is forgotten as stored.
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
      this.#listedUpTo = "";
      this.#sweep = undefined;
      this.#since = performance.now();
    }
    if (this.#sweep === undefined && unique.size >= SWEEP_MIN_HASHES) {
      const pages = Math.min(50, Math.ceil(unique.size / SWEEP_HASHES_PER_PAGE));
      this.#sweep = this.#sweepArea(pages, signal);
    }
    await this.#sweep?.catch(() => {}); // a failed sweep only means fewer answers from memory
    const found = new Set([...unique].filter((h) => this.#known.has(h)));
    const ask = [...unique].filter((h) => !found.has(h) && blobRel(h) > this.#listedUpTo);
    await runPool(ask, { jobs: 16, signal }, async (h) => {
      if (await this.#head(h, signal)) found.add(h);
    });
    return found;
  }

  /** Remembers stored hashes, unless that is too many names. */
  #learn(hashes: string[]): void {
    if (this.#known.size + hashes.length > MAX_KNOWN) return;
    for (const h of hashes) this.#known.add(h);
  }

  /**
   * Lists `blobs/` from its start, stopping after `pages` pages or once the
   * share of the (uniform) key space read shows the area is longer than
   * that; every name up to the last one read is then known.
   */
  async #sweepArea(pages: number, signal?: AbortSignal): Promise<void> {
    const hashes: string[] = [];
    let upTo = "";
    for (let page = 1, marker: string | undefined;; page++) {
      const got = await this.az.list("blobs/", marker, signal);
      hashes.push(...got.objects.flatMap((o) => hashOf(o.rel) ?? []));
      const last = got.objects.at(-1)?.rel ?? upTo;
      upTo = last;
      marker = got.more;
      if (marker === undefined) {
        upTo = "~";
        break;
      }
      const share = (parseInt(last.slice(9, 13), 16) + 1) / 65_536;
      if (page >= pages || !(page / share <= pages)) break;
    }
    if (this.#known.size + hashes.length > MAX_KNOWN) return;
    this.#learn(hashes);
    this.#listedUpTo = upTo;
  }

  async #head(hash: string, signal?: AbortSignal): Promise<boolean> {
    const client = this.az.blob(blobRel(hash));
    const found = await this.az.run(
      `check blob ${hash}`,
      (abortSignal) => client.getProperties({ abortSignal }),
      { signal, expect: noBlob(false) },
    );
    if (found !== false) this.#learn([hash]);
    return found !== false;
  }

  /** Stores a blob unless it is there, verifying its content hashes to `hash`. */
  async putBlob(hash: string, source: C.BlobSource, opts: C.CallOptions = {}): Promise<void> {
    const { signal } = opts;
    checkBlobHash(hash);
    signal?.throwIfAborted();
    if (source.kind === "bytes" || source.size <= this.#tuning.singlePutBytes) {
      const bytes = await readCheckedSource(hash, source);
      const client = this.az.blob(blobRel(hash));
      await this.az.run(`store blob ${hash}`, (abortSignal) =>
        client.upload(bytes, bytes.length, {
          abortSignal,
          conditions: { ifNoneMatch: "*" }, // 409: already stored, which is success
          transactionalContentMD5: md5(bytes),
          blobHTTPHeaders: { blobContentType: "application/octet-stream" },
        }), { signal, expect: (e) => (isExisting(e) ? null : undefined) });
      this.#learn([hash]);
      return;
    }
    await this.#putBlocks(hash, source, signal);
  }

  /**
   * Uploads a large file as blocks (HEAD first: an existing blob is not
   * sent again), up to 4 staged at once (8 for the whole provider); the
   * last block is read only once the whole file hashed to its name, and the
   * blob becomes visible only with the conditional Put Block List after it.
   * Staged blocks that are never committed stay invisible, and Azure drops
   * them after a week.
   */
  async #putBlocks(hash: string, source: C.BlobSource & { kind: "file" }, signal?: AbortSignal) {
    if (await this.#head(hash, signal)) return;
    const client = this.az.blob(blobRel(hash));
    const what = `store blob ${hash}`;
    const blockBytes = Math.max(
      this.#tuning.blockBytes,
      Math.ceil(source.size / 49_000 / MiB) * MiB,
    );
    // Block ids of one blob must all have the same length; a random upload id keeps
    // this upload's blocks apart from a concurrent uploader's.
    const upload = randomBytes(8).toString("hex");
    const ids: string[] = [];
    const inFlight = new Set<Promise<void>>();
    let failed: { error: unknown } | undefined;
    const stage = async (id: string, body: Uint8Array) => {
      try {
        await this.az.run(what, (abortSignal) =>
          client.stageBlock(id, body, body.length, {
            abortSignal,
            transactionalContentMD5: md5(body),
          }), { signal });
      } finally {
        this.#blockSlots.release();
      }
    };
    try {
      for await (const body of checkedChunks(hash, source, blockBytes)) {
        if (failed !== undefined) break;
        while (inFlight.size >= BLOCKS_PER_FILE) await Promise.race(inFlight);
        await this.#blockSlots.acquire();
        const id = btoa(`${upload}-${String(ids.length).padStart(6, "0")}`);
        ids.push(id);
        const p: Promise<void> = stage(id, body).catch((error) => {
          failed ??= { error };
        }).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
    } finally {
      await Promise.all(inFlight);
    }
    if (failed !== undefined) throw failed.error;
    // A failed condition: stored meanwhile by someone else, which is success.
    await this.az.run(what, (abortSignal) =>
      client.commitBlockList(ids, {
        abortSignal,
        conditions: { ifNoneMatch: "*" },
        blobHTTPHeaders: { blobContentType: "application/octet-stream" },
      }), { signal, expect: (e) => (isExisting(e) ? null : undefined) });
    this.#learn([hash]);
  }

  /** Streams a blob or a range of it; NotFoundError when missing. */
  async getBlob(hash: string, opts: C.GetBlobOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const { signal, range } = opts;
    checkBlobHash(hash);
    const what = `read blob ${hash}`;
    const missing = () => missingBlob(hash, this.az.where);
    if (range !== undefined && range.length <= 0) {
      if (!(await this.#head(hash, signal))) throw missing();
      return EMPTY();
    }
    const client = this.az.blob(blobRel(hash));
    // A range that starts past the end has no bytes (416).
    const pastEnd = (e: unknown) => (errorOf(e).status === 416 ? true : undefined);
    const out = await this.az.run(
      what,
      (abortSignal) =>
        client.download(range?.offset ?? 0, range?.length, { abortSignal, maxRetryRequests: 0 }),
      { signal, expect: (e) => noBlob(false)(e) ?? (range && pastEnd(e)) },
    );
    if (out === true) return EMPTY();
    if (out === false || out.readableStreamBody === undefined) throw missing();
    // A fault mid-stream (reset, timeout) becomes a retryable DatastoreError.
    const body = Readable.toWeb(out.readableStreamBody as Readable) as ReadableStream<Uint8Array>;
    const reader = body.getReader();
    return new ReadableStream<Uint8Array>({
      pull: (controller) =>
        reader.read().then(
          ({ done, value }) => done ? controller.close() : controller.enqueue(value),
          (err) => controller.error(this.az.fail(err, what)),
        ),
      cancel: (reason) => reader.cancel(reason),
    });
  }

  /** One page of stored blobs (a page that held only stray names reads on). */
  async listBlobs(opts: C.ListOptions = {}): Promise<C.Page<C.BlobListing>> {
    for (let marker = opts.cursor;;) {
      const got = await this.az.list("blobs/", marker, opts.signal);
      const items = got.objects.flatMap((o) => {
        const hash = hashOf(o.rel);
        return hash === undefined ? [] : [{ hash, size: o.size, modifiedMs: o.modifiedMs }];
      });
      if (got.more === undefined || items.length > 0) return { items, cursor: got.more };
      marker = got.more;
    }
  }

  /** Deletes a blob (and any snapshots of it); a missing one is fine. */
  async deleteBlob(hash: string, opts: C.CallOptions = {}): Promise<void> {
    checkBlobHash(hash);
    this.#known.delete(hash);
    const client = this.az.blob(blobRel(hash));
    await this.az.run(
      `delete blob ${hash}`,
      (abortSignal) => client.delete({ abortSignal, deleteSnapshots: "include" }),
      { signal: opts.signal, expect: noBlob(null) },
    );
  }
}

/** MD5 of a body, which Azure checks on arrival (a transfer check, not the content check). */
function md5(bytes: Uint8Array): Uint8Array {
  return createHash("md5").update(bytes).digest();
}
