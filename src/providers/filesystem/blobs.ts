/**
 * Blob storage of the filesystem provider: `blobs/AB/SHA256`, immutable,
 * content-addressed. A blob is written to `tmp/` while it is hashed, checked
 * against its name, and renamed into place, so no reader sees a partial blob.
 *
 * @module
 */
import { join } from "node:path";
import { runPool } from "../../async.ts";
import {
  BLOB_HASH,
  checkBlobHash,
  checkedChunks,
  missingBlob,
  oneChunkStream,
  readCheckedSource,
} from "../../provider/blob_source.ts";
import type { BlobListing, BlobSource, ByteRange, Page } from "../../provider/contract.ts";
import {
  ASYNC_FS,
  fsFail,
  isNotFound,
  readDirOrEmpty,
  removeQuietly,
  renameInto,
  SYNC_FS,
  type TempFiles,
} from "./_fs.ts";

type FileSource = Extract<BlobSource, { kind: "file" }>;

/** Files up to this size are read in one call; larger ones are streamed. */
const SMALL_BLOB_BYTES = 4 * 1024 * 1024;
/** Blobs up to this size are written with synchronous calls on a local disk. */
const SYNC_WRITE_BYTES = 64 * 1024;
const CHUNK = 1024 * 1024;
/** Parallel existence checks in `has`. */
const EXISTS_CONCURRENCY = 64;
/** A prefix with at least this many queried hashes may be answered by one readdir. */
const READDIR_MIN_QUERIES = 32;

/** The blobs area of one datastore. */
export class BlobStore {
  readonly #dir: string;
  readonly #temps: TempFiles;
  /**
   * Small blobs are checked, stored and read with synchronous calls: set when the
   * store is on a local disk ({@linkcode isLocalDisk}), never on a network
   * mount, where a hung server would block a synchronous call past every
   * deadline.
   */
  syncSmallIo = false;

  constructor(dir: string, temps: TempFiles) {
    this.#dir = dir;
    this.#temps = temps;
  }

  /** Path of a blob (`hash` checked: 64 hex digits, so no join is needed; this runs per blob). */
  path(hash: string): string {
    return `${this.#dir}/${hash.slice(0, 2)}/${hash}`;
  }

  /** Which of `hashes` are stored. */
  async has(hashes: readonly string[], signal?: AbortSignal): Promise<Set<string>> {
    const unique = [...new Set(hashes)];
    for (const h of unique) checkBlobHash(h);
    const found = new Set<string>();
    const single: string[] = [];
    // Many queries under one prefix: one readdir beats many stats, unless the
    // directory is much larger than the query (estimated from its size).
    const byPrefix = [...Map.groupBy(unique, (h) => h.slice(0, 2))];
    await runPool(byPrefix, { jobs: 16 }, async ([prefix, list]) => {
      if (list.length < READDIR_MIN_QUERIES) {
        single.push(...list);
        return;
      }
      const dir = join(this.#dir, prefix);
      let st: Deno.FileInfo;
      try {
        st = await Deno.stat(dir);
      } catch (err) {
        if (isNotFound(err)) return; // nothing stored under this prefix
        throw fsFail(err, "inspect blob directory", dir);
      }
      if (st.size / 100 > list.length * 8) {
        single.push(...list);
        return;
      }
      const names = new Set((await readDirOrEmpty(dir, signal)).map((e) => e.name));
      for (const h of list) if (names.has(h)) found.add(h);
    });
    if (single.length === 0) return found;
    const fs = await nodeFs();
    if (this.syncSmallIo) {
      for (let i = 0; i < single.length; i++) {
        if (i % 1024 === 0) signal?.throwIfAborted();
        if (fs.existsSync(this.path(single[i]))) found.add(single[i]);
      }
      return found;
    }
    // One existence check per hash: node's `exists` answers without throwing,
    // where an lstat of a missing blob builds a NotFound error (several times
    // the cost). An error reads as "absent", which is safe: the blob is stored
    // again, and a real fault surfaces in that put.
    await runPool(single, { jobs: EXISTS_CONCURRENCY }, async (h) => {
      signal?.throwIfAborted();
      if (await new Promise((resolve) => fs.exists(this.path(h), resolve))) found.add(h);
    });
    return found;
  }

  /**
   * Stores a blob, verifying its content hashes to `hash` before it becomes
   * visible, then renames it into place. Blobs are content-addressed, so
   * replacing an existing copy replaces it with identical bytes; a rename
   * costs one syscall where link + unlink cost two.
   */
  async put(hash: string, source: BlobSource, signal?: AbortSignal): Promise<void> {
    checkBlobHash(hash);
    signal?.throwIfAborted();
    const target = this.path(hash);
    let tmp: string | undefined;
    let fs = ASYNC_FS;
    try {
      if (source.kind === "file" && source.size > SMALL_BLOB_BYTES) {
        // Streamed through a temporary file; the last chunk is written only
        // once the whole file hashed to its name (checkedChunks).
        const chunks = () => ReadableStream.from(checkedChunks(hash, source as FileSource, CHUNK));
        tmp = await this.#temps.write(chunks, { signal, tag: "b" });
      } else {
        const bytes = await readCheckedSource(hash, source);
        // Small blobs are written with synchronous calls on a local disk only
        // (see syncSmallIo): an async write costs several times as much.
        fs = this.syncSmallIo && bytes.length <= SYNC_WRITE_BYTES ? SYNC_FS : ASYNC_FS;
        tmp = await this.#temps.write(bytes, { signal, tag: "b", fs });
      }
      signal?.throwIfAborted();
      await renameInto(tmp, target, "store blob", fs);
      tmp = undefined;
    } finally {
      if (tmp !== undefined) await removeQuietly(tmp, fs);
    }
  }

  /** Streams a blob, or a range of it. */
  async get(
    hash: string,
    opts: { signal?: AbortSignal; range?: ByteRange } = {},
  ): Promise<ReadableStream<Uint8Array>> {
    checkBlobHash(hash);
    const { signal, range } = opts;
    signal?.throwIfAborted();
    const path = this.path(hash);
    const sync = this.syncSmallIo && range === undefined;
    const opened = sync
      ? Promise.resolve().then(() => Deno.openSync(path, { read: true }))
      : Deno.open(path, { read: true });
    const file = await opened.catch((err) => {
      throw isNotFound(err) ? missingBlob(hash, `(${path})`) : fsFail(err, "open blob", path);
    });
    let limit = range?.length;
    try {
      if (range !== undefined) await file.seek(range.offset, Deno.SeekMode.Start);
      // The size read once: each read asks for no more than is left, and
      // the stream ends without an extra read to find the end (most blobs
      // are small: one read of exactly their size).
      else limit = sync ? file.statSync().size : (await file.stat()).size;
      if (sync && limit! <= SYNC_WRITE_BYTES) return readWholeSync(file, limit!);
    } catch (err) {
      file.close();
      throw fsFail(err, "read blob", path);
    }
    return fileStream(file, path, { signal, limit });
  }

  /**
   * One page of the stored blobs: the blobs of one prefix directory
   * (`cursor` is the next prefix, two hex digits), with size and mtime.
   */
  async list(cursor: string | undefined, signal?: AbortSignal): Promise<Page<BlobListing>> {
    let i = cursor === undefined ? 0 : parseInt(cursor, 16);
    if (!Number.isInteger(i) || i < 0) i = 256;
    for (; i < 256; i++) {
      const prefix = i.toString(16).padStart(2, "0");
      const dir = join(this.#dir, prefix);
      const names = (await readDirOrEmpty(dir, signal))
        .filter((e) => e.isFile && BLOB_HASH.test(e.name) && e.name.startsWith(prefix))
        .map((e) => e.name);
      if (names.length === 0) continue;
      const items = await runPool(names, { jobs: 32 }, async (name) => {
        try {
          const st = await Deno.lstat(join(dir, name));
          return [{ hash: name, size: st.size, modifiedMs: st.mtime?.getTime() ?? 0 }];
        } catch (err) {
          if (isNotFound(err)) return []; // deleted meanwhile
          throw fsFail(err, "inspect blob", join(dir, name));
        }
      });
      return {
        items: items.flat(),
        ...(i < 255 && { cursor: (i + 1).toString(16).padStart(2, "0") }),
      };
    }
    return { items: [] };
  }

  /** Deletes a blob; a missing one is fine. */
  async delete(hash: string, signal?: AbortSignal): Promise<void> {
    checkBlobHash(hash);
    signal?.throwIfAborted();
    await Deno.remove(this.path(hash)).catch((err) => {
      if (!isNotFound(err)) throw fsFail(err, "delete blob", this.path(hash));
    });
  }
}

/**
 * A small blob (at most {@linkcode SYNC_WRITE_BYTES}, on a local disk) read
 * whole with synchronous calls and closed (an async read costs several times
 * the read itself, and a first pull reads one per file), as a one-chunk
 * stream.
 */
function readWholeSync(file: Deno.FsFile, size: number): ReadableStream<Uint8Array> {
  const buf = new Uint8Array(size);
  let off = 0;
  while (off < size) {
    const n = file.readSync(buf.subarray(off));
    if (n === null) break; // shrank since the stat: the hash check downstream tells
    off += n;
  }
  file.close();
  return oneChunkStream(off === size ? buf : buf.subarray(0, off));
}

let fsModule: Promise<typeof import("node:fs")> | undefined;

/** node:fs, loaded on first use: it costs start-up time that a no-op sync never needs. */
function nodeFs(): Promise<typeof import("node:fs")> {
  return fsModule ??= import("node:fs");
}

/**
 * A pull-based stream over an open file (at most `limit` bytes from where it
 * stands) that stops when `signal` aborts; the file is closed at its end, on
 * an error and on cancel.
 */
function fileStream(
  file: Deno.FsFile,
  path: string,
  opts: { signal?: AbortSignal; limit?: number },
): ReadableStream<Uint8Array> {
  let left = opts.limit ?? Infinity;
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    file.close();
  };
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      try {
        opts.signal?.throwIfAborted();
        const buf = new Uint8Array(Math.min(256 * 1024, left));
        const n = buf.length === 0 ? null : await file.read(buf);
        if (n === null) {
          close();
          return ctrl.close();
        }
        left -= n;
        ctrl.enqueue(buf.subarray(0, n));
        if (left === 0) {
          close();
          ctrl.close();
        }
      } catch (err) {
        close();
        ctrl.error(fsFail(err, "read blob", path));
      }
    },
    cancel: close,
  }, { highWaterMark: 0 });
}
