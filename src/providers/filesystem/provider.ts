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
import { fsFail, isLocalDisk, isNotFound, mkdirp, TempFiles } from "./_fs.ts";
import { BlobStore } from "./blobs.ts";
import { RecordStore } from "./records.ts";

/** A datastore in a directory. */
export class FilesystemProvider implements Provider {
  readonly type = "filesystem";
  readonly #root: string;
  readonly #temps: TempFiles;
  readonly #blobs: BlobStore;
  readonly #records: RecordStore;

  /** `root` must be absolute (the module's `create` resolves it against `baseDir`). */
  constructor(root: string, context: ProviderContext) {
    this.#root = root;
    this.#temps = new TempFiles(join(root, "tmp"), context.pid);
    this.#blobs = new BlobStore(join(root, "blobs"), this.#temps);
    this.#records = new RecordStore(root, this.#temps);
  }

  hasBlobs(hashes: string[], opts: CallOptions = {}): Promise<Set<string>> {
    return this.#guard(async () => {
      const found = await this.#blobs.has(hashes, opts.signal);
      return await this.#checkEmpty(found, found.size === 0 && hashes.length > 0);
    });
  }

  putBlob(hash: string, source: BlobSource, opts: CallOptions = {}): Promise<void> {
    return this.#guard(() => this.#blobs.put(hash, source, opts.signal));
  }

  getBlob(hash: string, opts: GetBlobOptions = {}): Promise<ReadableStream<Uint8Array>> {
    return this.#guard(() => this.#blobs.get(hash, { signal: opts.signal, range: opts.range }));
  }

  listBlobs(opts: ListOptions = {}): Promise<Page<BlobListing>> {
    return this.#guard(() => this.#blobs.list(opts.cursor, opts.signal));
  }

  deleteBlob(hash: string, opts: CallOptions = {}): Promise<void> {
    return this.#guard(() => this.#blobs.delete(hash, opts.signal));
  }

  getRecord(key: string, opts: CallOptions = {}): Promise<StoredRecord | null> {
    return this.#guard(async () => {
      const rec = await this.#records.get(key, opts.signal);
      return await this.#checkEmpty(rec, rec === null);
    });
  }

  createRecord(key: string, bytes: Uint8Array, opts: CallOptions = {}): Promise<string | null> {
    return this.#guard(() => this.#records.create(key, bytes, opts.signal));
  }

  replaceRecord(
    key: string,
    bytes: Uint8Array,
    version: string,
    opts: CallOptions = {},
  ): Promise<string | null> {
    return this.#guard(() => this.#records.replace(key, bytes, version, opts.signal));
  }

  deleteRecord(key: string, version: string, opts: CallOptions = {}): Promise<boolean> {
    return this.#guard(() => this.#records.delete(key, version, opts.signal));
  }

  listRecords(prefix: string, opts: ListOptions = {}): Promise<Page<RecordListing>> {
    return this.#guard(async () => {
      const page = await this.#records.list(prefix, opts.signal);
      return await this.#checkEmpty(page, page.items.length === 0);
    });
  }

  describe(): { type: string; location: string } {
    return { type: this.type, location: this.#root };
  }

  capabilities(): Capabilities {
    return {
      scopedSync: true,
      atomicCommit: true,
      serverTime: false,
      rangedReads: true,
      maxConcurrency: 16,
    };
  }

  async open(opts: CallOptions = {}): Promise<void> {
    opts.signal?.throwIfAborted();
    let st: Deno.FileInfo;
    try {
      st = await Deno.stat(this.#root);
    } catch (err) {
      if (isNotFound(err)) throw this.#missingRoot();
      throw fsFail(err, "open datastore directory", this.#root);
    }
    if (!st.isDirectory) {
      throw new NotFoundError(
        `Datastore path ${this.#root} is not a directory: point the datastore at a directory.`,
      );
    }
    this.#blobs.syncSmallWrites = await isLocalDisk(this.#root);
  }

  async init(opts: CallOptions = {}): Promise<void> {
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

  /** Maps a missing ROOT to NotFoundError; other errors pass through mapped. */
  async #guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof NotFoundError && isNotFound(err.cause) && !(await this.#rootExists())) {
        throw this.#missingRoot();
      }
      throw err;
    }
  }

  async #rootExists(): Promise<boolean> {
    try {
      await Deno.stat(this.#root);
      return true;
    } catch (err) {
      return !isNotFound(err);
    }
  }

  /** An empty answer may mean the whole datastore vanished: say so. */
  async #checkEmpty<T>(result: T, empty: boolean): Promise<T> {
    if (empty && !(await this.#rootExists())) throw this.#missingRoot();
    return result;
  }
}
