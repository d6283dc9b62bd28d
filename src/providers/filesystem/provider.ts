/**
 * The filesystem provider: a datastore in a directory (local disk or NFS).
 *
 * Layout under ROOT (see design/filesystem.md):
 * ```
 * blobs/AB/SHA256             immutable content
 * KEY/NNNNNNNNNNNN.json       versions of the record KEY (config, heads/…, history/…, locks/…)
 * tmp/                        temporaries for atomic writes
 * ```
 *
 * @example
 * ```ts
 * import { FilesystemProvider } from "./provider.ts";
 * const p = new FilesystemProvider("/tmp/store", {
 *   callTimeoutMs: 30_000, host: "h", pid: 1, baseDir: "/",
 * });
 * console.log(p.describe()); // { type: "filesystem", location: "/tmp/store" }
 * ```
 * @module
 */
import { join } from "node:path";
import { NotFoundError } from "../../errors.ts";
import type * as C from "../../provider/contract.ts";
import { ASYNC_FS, fsFail, isLocalDisk, isNotFound, mkdirp, SYNC_FS, TempFiles } from "./_fs.ts";
import { BlobStore } from "./blobs.ts";
import { RecordStore } from "./records.ts";

/** A datastore in a directory. */
export class FilesystemProvider implements C.Provider {
  readonly type = "filesystem";
  readonly #root: string;
  readonly #blobs: BlobStore;
  readonly #records: RecordStore;

  /** `root` must be absolute (the module's `create` resolves it against `baseDir`). */
  constructor(root: string, context: C.ProviderContext) {
    this.#root = root;
    const temps = new TempFiles(join(root, "tmp"), context.pid);
    this.#blobs = new BlobStore(join(root, "blobs"), temps);
    this.#records = new RecordStore(root, temps);
  }

  /** Asks the disk every time, so every answer is `fresh`. */
  hasBlobs(hashes: string[], opts: C.HasBlobsOptions = {}): Promise<Set<string>> {
    const none = (found: Set<string>) => found.size === 0 && hashes.length > 0;
    return this.#guard(() => this.#blobs.has(hashes, opts.signal), none);
  }

  putBlob(hash: string, source: C.BlobSource, opts: C.CallOptions = {}): Promise<void> {
    return this.#guard(() => this.#blobs.put(hash, source, opts.signal));
  }

  getBlob(hash: string, opts: C.GetBlobOptions = {}): Promise<ReadableStream<Uint8Array>> {
    return this.#guard(() => this.#blobs.get(hash, { signal: opts.signal, range: opts.range }));
  }

  listBlobs(opts: C.ListOptions = {}): Promise<C.Page<C.BlobListing>> {
    return this.#guard(() => this.#blobs.list(opts.cursor, opts.signal));
  }

  deleteBlob(hash: string, opts: C.CallOptions = {}): Promise<void> {
    return this.#guard(() => this.#blobs.delete(hash, opts.signal));
  }

  getRecord(key: string, opts: C.CallOptions = {}): Promise<C.StoredRecord | null> {
    return this.#guard(() => this.#records.get(key, opts.signal), (rec) => rec === null);
  }

  createRecord(key: string, bytes: Uint8Array, opts: C.CallOptions = {}): Promise<string | null> {
    return this.#guard(() => this.#records.create(key, bytes, opts.signal));
  }

  replaceRecord(
    key: string,
    bytes: Uint8Array,
    version: string,
    opts: C.CallOptions = {},
  ): Promise<string | null> {
    return this.#guard(() => this.#records.replace(key, bytes, version, opts.signal));
  }

  deleteRecord(key: string, version: string, opts: C.CallOptions = {}): Promise<boolean> {
    return this.#guard(() => this.#records.delete(key, version, opts.signal));
  }

  listRecords(prefix: string, opts: C.ListOptions = {}): Promise<C.Page<C.RecordListing>> {
    const none = (page: C.Page<C.RecordListing>) => page.items.length === 0;
    return this.#guard(() => this.#records.list(prefix, opts.signal), none);
  }

  describe(): { type: string; location: string } {
    return { type: this.type, location: this.#root };
  }

  capabilities(): C.Capabilities {
    return {
      scopedSync: true,
      atomicCommit: true,
      serverTime: false,
      rangedReads: true,
      maxConcurrency: 16,
    };
  }

  async open(opts: C.CallOptions = {}): Promise<void> {
    opts.signal?.throwIfAborted();
    const st = await Deno.stat(this.#root).catch((err) => {
      throw isNotFound(err)
        ? this.#missingRoot()
        : fsFail(err, "open datastore directory", this.#root);
    });
    if (!st.isDirectory) {
      throw new NotFoundError(
        `Datastore path ${this.#root} is not a directory: point the datastore at a directory.`,
      );
    }
    const local = await isLocalDisk(this.#root);
    this.#blobs.syncSmallIo = local;
    this.#records.fs = local ? SYNC_FS : ASYNC_FS;
  }

  async init(opts: C.CallOptions = {}): Promise<void> {
    opts.signal?.throwIfAborted();
    for (const d of ["blobs", "tmp"]) await mkdirp(join(this.#root, d));
    await this.open(opts);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  #missingRoot(): NotFoundError {
    return new NotFoundError(
      `Datastore directory ${this.#root} does not exist: create it or run ` +
        `"modelsync init --datastore filesystem:${this.#root}".`,
    );
  }

  /**
   * Runs `fn`. A NotFound caused by a missing path, or an answer that
   * `empty` finds empty, may mean the whole datastore vanished: then that
   * is the error, naming ROOT and the remedy.
   */
  async #guard<T>(fn: () => Promise<T>, empty?: (result: T) => boolean): Promise<T> {
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      if (err instanceof NotFoundError && isNotFound(err.cause) && !(await this.#rootExists())) {
        throw this.#missingRoot();
      }
      throw err;
    }
    if (empty?.(result) && !(await this.#rootExists())) throw this.#missingRoot();
    return result;
  }

  async #rootExists(): Promise<boolean> {
    return await Deno.stat(this.#root).then(() => true, (err) => !isNotFound(err));
  }
}
