/**
 * The provider contract, version 2 (SPEC §4, design/provider.md): what a
 * datastore implementation offers. Two primitives and its capabilities:
 *
 * - **blobs**: immutable, content-addressed (SHA-256) byte strings;
 * - **records**: small documents under keys, changed only by
 *   compare-and-swap on an opaque version token.
 *
 * Everything else (leases, manifest commits and history, the datastore
 * marker, corrupt-record handling, the live probe) is written once above
 * these, in `src/lock/`, `src/model/` and `src/provider/datastore.ts`.
 *
 * A provider module exports `{ type, configSchema, create(config, context) }`
 * and optionally `parseSpec`. Everything here is plain data and interfaces,
 * so third-party modules can implement it without importing any built-in
 * provider.
 *
 * @module
 */
import type { z } from "zod";

/** The datastore format this version reads and writes (design/format.md). */
export const DATASTORE_FORMAT = 2;

/** What a datastore can do; plain data, read once per command. */
export interface Capabilities {
  /** Per-model locks and per-model commits are safe; the global lock is skipped. */
  scopedSync: boolean;
  /**
   * Records are a true compare-and-swap: of any number of concurrent
   * conditional writers of one record, exactly one wins.
   */
  atomicCommit: boolean;
  /** `getRecord` returns the store's clock, and lock expiry is judged by it. */
  serverTime: boolean;
  /** `getBlob` honours a byte range. */
  rangedReads: boolean;
  /** Suggested parallel transfers. */
  maxConcurrency: number;
  /**
   * Resolution of the store's clock (e.g. 1000 for HTTP dates), counted
   * against whoever judges a lease expired. 0 when absent.
   */
  clockResolutionMs?: number;
  /**
   * Optional: why this datastore declares less than its type usually can
   * (e.g. "the endpoint ignores conditional writes"), shown as a warning by
   * every command and in `caps`.
   */
  limitation?: string;
}

/** Names of the boolean capabilities, as accepted by `--disable-cap`. */
export const CAPABILITY_NAMES = [
  "scopedSync",
  "atomicCommit",
  "serverTime",
  "rangedReads",
] as const;
export type CapabilityName = typeof CAPABILITY_NAMES[number];

/** Per-call options: every datastore call honours the signal. */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Options of `hasBlobs`. */
export interface HasBlobsOptions extends CallOptions {
  /**
   * Ask the store itself: an answer from memory of earlier calls (a cache of
   * hashes known to be stored) is not good enough. A push sets it when `gc`
   * may have removed blobs since it last asked (design/sync.md).
   */
  fresh?: boolean;
}

/** The content of a blob to store. */
export type BlobSource =
  | {
    kind: "file";
    path: string;
    size: number;
    /**
     * Optional progress hook: a provider that streams the file may call it
     * with the number of bytes read as they are read. Providers that do not
     * call it lose nothing but progress within the file.
     */
    onRead?: (bytes: number) => void;
  }
  | { kind: "bytes"; bytes: Uint8Array };

/** A byte range of a blob: `length` bytes from `offset`. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** Options of `getBlob`. */
export interface GetBlobOptions extends CallOptions {
  /** Only with the `rangedReads` capability. */
  range?: ByteRange;
}

/** One stored blob, as listed (for `gc` and `verify`). */
export interface BlobListing {
  hash: string;
  size: number;
  /** When it was stored (the store's clock where it has one); for gc's grace period. */
  modifiedMs: number;
}

/** One page of a listing; `cursor` continues it (absent: the last page). */
export interface Page<T> {
  items: T[];
  cursor?: string;
}

/** Options of a paged listing. */
export interface ListOptions extends CallOptions {
  /** The `cursor` of the previous page. */
  cursor?: string;
}

/**
 * A record as read: its bytes, its version token and, where the store has a
 * clock, the store's view of time.
 */
export interface StoredRecord {
  bytes: Uint8Array;
  /** Opaque; changes on every write of the record, never repeats for one key. */
  version: string;
  /** When the store wrote this version, by the store's clock (or the file system's). */
  modifiedMs?: number;
  /** The store's clock when it answered (only with the `serverTime` capability). */
  storeNowMs?: number;
}

/** One record in a listing: key and version, no body. */
export interface RecordListing {
  key: string;
  version: string;
  /** When the store wrote this version, where known. */
  modifiedMs?: number;
}

/**
 * A datastore: the two primitives.
 *
 * Keys are `/`-separated segments of `[A-Za-z0-9._@-]` (never empty, `.` or
 * `..`); no key is a prefix-directory of another (`a/b` and `a/b/c` never
 * both exist). Record bodies are never empty.
 */
export interface Provider {
  readonly type: string;

  /**
   * Which of `hashes` are stored. Implementations batch the checks; with
   * `fresh`, every answer comes from the store, not from memory.
   */
  hasBlobs(hashes: string[], opts?: HasBlobsOptions): Promise<Set<string>>;
  /**
   * Stores a blob under its SHA-256 unless it is already there. Verifies
   * the content hashes to `hash` before it becomes visible, and throws
   * `ContentChangedError` when it does not. A stored blob never changes.
   */
  putBlob(hash: string, source: BlobSource, opts?: CallOptions): Promise<void>;
  /** Streams a blob (or a range of it). Throws `NotFoundError` when it is missing. */
  getBlob(hash: string, opts?: GetBlobOptions): Promise<ReadableStream<Uint8Array>>;
  /** Lists stored blobs, a page at a time, in no particular order. */
  listBlobs(opts?: ListOptions): Promise<Page<BlobListing>>;
  /** Deletes a blob (for `gc`); a missing blob is fine. */
  deleteBlob(hash: string, opts?: CallOptions): Promise<void>;

  /** The record under `key`, or null when there is none. */
  getRecord(key: string, opts?: CallOptions): Promise<StoredRecord | null>;
  /** Creates `key` if absent: its new version, or null when the key exists. */
  createRecord(key: string, bytes: Uint8Array, opts?: CallOptions): Promise<string | null>;
  /**
   * Replaces `key` only if its version is still `version`: the new version,
   * or null when the record changed or is gone.
   */
  replaceRecord(
    key: string,
    bytes: Uint8Array,
    version: string,
    opts?: CallOptions,
  ): Promise<string | null>;
  /** Deletes `key` only if its version is still `version`: false when it changed or is gone. */
  deleteRecord(key: string, version: string, opts?: CallOptions): Promise<boolean>;
  /**
   * Lists the records whose keys start with `prefix` (keys and versions, no
   * bodies), a page at a time, sorted by key. A record written before the
   * call started is listed (list-after-write).
   */
  listRecords(prefix: string, opts?: ListOptions): Promise<Page<RecordListing>>;

  /** Type and location, secrets redacted. */
  describe(): { type: string; location: string };
  /** What the datastore can do. Optional: missing means all false. */
  capabilities?(): Capabilities;
  /**
   * Checks the store is reachable and exists (a directory, a bucket).
   * Throws `NotFoundError` (exit 3) when it does not. The datastore marker
   * is read above the provider.
   */
  open(opts?: CallOptions): Promise<void>;
  /** Creates what the store needs before its first record (a directory); idempotent. */
  init(opts?: CallOptions): Promise<void>;
  close(): Promise<void>;
}

/** One live check made by `caps --probe`. */
export interface ProbeCheck {
  name: string;
  /** The capability this check backs, if any. */
  capability?: CapabilityName;
  ok: boolean;
  detail: string;
}

/** What a provider's `create` receives besides its configuration. */
export interface ProviderContext {
  /** Deadline for each single datastore call, in milliseconds. */
  callTimeoutMs: number;
  /** This host's name and this process's pid. */
  host: string;
  pid: number;
  /** Directory of the repository (for resolving relative paths in config). */
  baseDir: string;
  /** Parallel transfers asked for with `--jobs`, when given (e.g. to size a connection pool). */
  jobs?: number;
}

/** What a provider module exports. */
export interface ProviderModule<C = unknown> {
  type: string;
  /** Validates the `datastore:` block of `modelsync.yaml` (without `type`). */
  configSchema: z.ZodType<C>;
  /**
   * Turns this type's datastore spec (what follows `TYPE:`, or the whole
   * URL for URL-like specs such as `s3://bucket/prefix`) into config keys.
   * Throws `UsageError` naming the problem. Optional: without it only the
   * mapping form of `modelsync.yaml` works.
   */
  parseSpec?(spec: string, ctx: { baseDir: string }): Record<string, unknown>;
  create(config: C, context: ProviderContext): Provider | Promise<Provider>;
}
