/**
 * The filesystem provider: a datastore in a directory (local disk or NFS).
 *
 * Layout under ROOT (see design/filesystem.md):
 * ```
 * modelsync.json                          {"format": 1}
 * blobs/AB/SHA256                         immutable content
 * manifests/TYPE/ID/GGGGGGGGGGGG.json     one file per generation
 * locks/global.json, locks/models/TYPE/ID.json
 * tmp/                                    temp files for atomic writes
 * ```
 *
 * @example
 * ```ts
 * import { FilesystemProvider } from "./provider.ts";
 * const p = new FilesystemProvider("/tmp/store", {
 *   callTimeoutMs: 30_000, host: "h", pid: 1, skewMarginMs: 2_000, baseDir: "/",
 * });
 * console.log(p.describe()); // { type: "filesystem", location: "/tmp/store" }
 * ```
 * @module
 */
import { join } from "node:path";
import { CorruptError, DatastoreError, NotFoundError } from "../../errors.ts";
import type { Manifest } from "../../model/manifest.ts";
import type { ModelRef } from "../../model/ref.ts";
import type {
  BlobSource,
  CallOptions,
  Capabilities,
  LockHandle,
  LockInfo,
  LockKey,
  ManifestListing,
  ProbeCheck,
  Provider,
  ProviderContext,
  StoredManifest,
} from "../../provider/contract.ts";
import { DATASTORE_FORMAT } from "../../provider/contract.ts";
import {
  fsFail,
  isLocalDisk,
  isNotFound,
  linkExclusive,
  mkdirp,
  removeQuietly,
  Signals,
  TempFiles,
} from "./_fs.ts";
import { BlobStore } from "./blobs.ts";
import { LockStore } from "./locks.ts";
import { ManifestStore } from "./manifests.ts";
import { runProbe } from "./probe.ts";

/** Name of the datastore marker file. */
export const MARKER = "modelsync.json";
/** The datastore format this code reads and writes. */
export const FORMAT = DATASTORE_FORMAT;

/** A datastore in a directory. */
export class FilesystemProvider implements Provider {
  readonly type = "filesystem";
  readonly #root: string;
  readonly #ctx: ProviderContext;
  readonly #signals: Signals;
  readonly #temps: TempFiles;
  readonly #blobs: BlobStore;
  readonly #manifests: ManifestStore;
  readonly #locks: LockStore;

  /** `root` must be absolute (the module's `create` resolves it against `baseDir`). */
  constructor(root: string, context: ProviderContext) {
    this.#root = root;
    this.#ctx = context;
    this.#signals = new Signals(context.signal);
    this.#temps = new TempFiles(join(root, "tmp"), context.pid);
    this.#blobs = new BlobStore(join(root, "blobs"), this.#temps);
    this.#manifests = new ManifestStore(join(root, "manifests"), this.#temps);
    this.#locks = new LockStore(join(root, "locks"), this.#temps, {
      host: context.host,
      pid: context.pid,
      skewMarginMs: context.skewMarginMs,
    });
  }

  hasBlobs(hashes: string[], opts: CallOptions = {}): Promise<Set<string>> {
    return this.#guard(async () => {
      const found = await this.#blobs.has(hashes, this.#signals.for(opts.signal));
      return await this.#checkEmpty(found, found.size === 0 && hashes.length > 0);
    });
  }

  putBlob(hash: string, source: BlobSource, opts: CallOptions = {}): Promise<void> {
    return this.#guard(() => this.#blobs.put(hash, source, this.#signals.for(opts.signal)));
  }

  getBlob(hash: string, opts: CallOptions = {}): Promise<ReadableStream<Uint8Array>> {
    return this.#guard(() => this.#blobs.get(hash, this.#signals.for(opts.signal)));
  }

  listManifests(opts: CallOptions = {}): Promise<ManifestListing[]> {
    return this.#guard(async () => {
      const list = await this.#manifests.list(this.#signals.for(opts.signal));
      return await this.#checkEmpty(list, list.length === 0);
    });
  }

  getManifest(model: ModelRef, opts: CallOptions = {}): Promise<StoredManifest | null> {
    return this.#guard(async () => {
      const stored = await this.#manifests.get(model, this.#signals.for(opts.signal));
      return await this.#checkEmpty(stored, stored === null);
    });
  }

  commitManifest(
    model: ModelRef,
    expectedGeneration: number,
    manifest: Manifest,
    opts: CallOptions = {},
  ): Promise<{ version: string }> {
    return this.#guard(() =>
      this.#manifests.commit(model, expectedGeneration, manifest, this.#signals.for(opts.signal))
    );
  }

  lock(key: LockKey): LockHandle {
    return this.#locks.handle(key, this.#signals);
  }

  listLocks(opts: CallOptions = {}): Promise<LockInfo[]> {
    return this.#guard(async () => {
      const locks = await this.#locks.list(this.#signals, opts);
      return await this.#checkEmpty(locks, locks.length === 0);
    });
  }

  describe(): { type: string; location: string } {
    return { type: this.type, location: this.#root };
  }

  capabilities(): Capabilities {
    return { scopedSync: true, atomicCommit: true, serverTime: false, maxConcurrency: 16 };
  }

  async open(opts: CallOptions = {}): Promise<void> {
    const signal = this.#signals.for(opts.signal);
    signal?.throwIfAborted();
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
    await this.#checkMarker(signal);
    const local = await isLocalDisk(this.#root);
    this.#blobs.syncSmallWrites = local;
    this.#manifests.syncReads = local;
  }

  async init(opts: CallOptions = {}): Promise<void> {
    const signal = this.#signals.for(opts.signal);
    signal?.throwIfAborted();
    for (const d of ["blobs", "manifests", join("locks", "models"), "tmp"]) {
      await mkdirp(join(this.#root, d));
    }
    const body = new TextEncoder().encode(JSON.stringify({ format: FORMAT }) + "\n");
    await this.#temps.ensure();
    const tmp = await this.#temps.write(body, signal, "i");
    try {
      await linkExclusive(tmp, join(this.#root, MARKER));
    } finally {
      await removeQuietly(tmp);
    }
    await this.#checkMarker(signal);
  }

  probe(opts: CallOptions = {}): Promise<ProbeCheck[]> {
    return this.#guard(() =>
      runProbe(join(this.#root, "tmp"), {
        pid: this.#ctx.pid,
        host: this.#ctx.host,
        signal: this.#signals.for(opts.signal),
      })
    );
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

  async #checkMarker(signal?: AbortSignal): Promise<void> {
    const path = join(this.#root, MARKER);
    let text: string;
    try {
      text = await Deno.readTextFile(path, { signal });
    } catch (err) {
      if (isNotFound(err)) {
        throw new NotFoundError(
          `Datastore directory ${this.#root} is not initialised (no ${MARKER}): run ` +
            `"modelsync init --datastore filesystem:${this.#root}".`,
        );
      }
      throw fsFail(err, "read datastore marker", path);
    }
    let format: unknown;
    try {
      format = (JSON.parse(text) as { format?: unknown } | null)?.format;
    } catch (err) {
      throw new CorruptError(
        `Datastore marker ${path} is not valid JSON: restore it as {"format": 1}.`,
        { cause: err },
      );
    }
    if (format === FORMAT) return;
    if (typeof format === "number" && Number.isInteger(format) && format > FORMAT) {
      throw new DatastoreError(
        `Datastore ${this.#root} uses format ${format}, newer than this modelsync reads (1): ` +
          `upgrade modelsync.`,
      );
    }
    throw new CorruptError(
      `Datastore marker ${path} is garbled (format ${JSON.stringify(format)}): ` +
        `restore it as {"format": 1}.`,
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
