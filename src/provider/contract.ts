/**
 * The provider contract (SPEC §4): what a datastore implementation offers.
 *
 * A provider module exports `{ type, configSchema, create(config, context) }`.
 * `create` returns a {@linkcode Provider}. Everything here is plain data and
 * interfaces, so third-party modules can implement it without importing any
 * built-in provider.
 *
 * @module
 */
import type { z } from "zod";
import type { Manifest } from "../model/manifest.ts";
import type { ModelRef } from "../model/ref.ts";

/** The datastore format this version reads and writes (`modelsync.json`: `{"format": 1}`). */
export const DATASTORE_FORMAT = 1;

/** What a datastore can do; plain data, read once per command by the lock manager. */
export interface Capabilities {
  /** Per-model locks and per-model atomic commits are safe; the global lock is skipped. */
  scopedSync: boolean;
  /** `commitManifest` is a true compare-and-swap. */
  atomicCommit: boolean;
  /** Lock expiry is judged by the datastore's clock. */
  serverTime: boolean;
  /** Suggested parallel transfers. */
  maxConcurrency: number;
  /**
   * Optional: why this datastore declares less than its type usually can
   * (e.g. "the endpoint ignores conditional writes"), shown as a warning by
   * every command and in `caps`.
   */
  limitation?: string;
}

/** Names of the boolean capabilities, as accepted by `--disable-cap`. */
export const CAPABILITY_NAMES = ["scopedSync", "atomicCommit", "serverTime"] as const;
export type CapabilityName = typeof CAPABILITY_NAMES[number];

/** Per-call options: every datastore call honours the signal and its own deadline. */
export interface CallOptions {
  signal?: AbortSignal;
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

/** One model in a manifest listing: its ref and an opaque version token. */
export interface ManifestListing {
  model: ModelRef;
  /**
   * Opaque token that changes whenever a new manifest is committed for the
   * model. Compared with the token kept in the base for the zero-diff fast path.
   */
  version: string;
}

/** A manifest with its version token. */
export interface StoredManifest {
  manifest: Manifest;
  version: string;
}

/** The lock keys: the global key, or one model. */
export type LockKey = { kind: "global" } | { kind: "model"; model: ModelRef };

/** Who asks for a lock. */
export interface LockRequest {
  holder: string;
  host: string;
  pid: number;
  operation: string;
  ttlMs: number;
  /** The holder's repository directory, shown by `lock status` (optional). */
  repo?: string;
}

/** A lock record as stored in the datastore. */
export interface LockRecord {
  /** `"global"` or the model's `type/id`. */
  key: string;
  holder: string;
  host: string;
  pid: number;
  operation: string;
  /** ISO timestamps. */
  acquiredAt: string;
  renewedAt: string;
  ttlMs: number;
  /** Random per acquisition; release and force-release check it. */
  nonce: string;
  /**
   * The holder's repository directory. Written since this field was added;
   * records written before have none, and readers must accept that.
   */
  repo?: string;
}

/** A lock record with the provider's judgement of it. */
export interface LockInfo {
  record: LockRecord;
  /** Expired (by server clock, or local clock plus skew margin) or same host and pid gone. */
  stale: boolean;
  /** Why it is stale, e.g. "expired 12s ago" or "pid 4242 on this host is gone". */
  staleReason?: string;
  /** Milliseconds since acquiredAt. */
  ageMs: number;
  /** Milliseconds until expiry; negative when expired. */
  ttlLeftMs: number;
}

/** Outcome of one attempt to take a lock. */
export type AcquireResult =
  | { acquired: true; record: LockRecord; tookOver?: LockRecord }
  | { acquired: false; current: LockInfo };

/** One lock key in one datastore. Obtained from `Provider.lock(key)`. */
export interface LockHandle {
  readonly key: LockKey;
  /**
   * Tries once, without waiting. A free key is created exclusively; a stale
   * record is taken over by compare-and-swap (never a blind delete) and
   * reported in `tookOver`; a live record is returned in `current`.
   */
  tryAcquire(req: LockRequest, opts?: CallOptions): Promise<AcquireResult>;
  /**
   * Extends the lease by compare-and-swap on the record. Throws
   * `LeaseLostError` when the record is gone or carries another nonce.
   */
  renew(nonce: string, opts?: CallOptions): Promise<LockRecord>;
  /** Releases the lock when it still carries `nonce`; otherwise does nothing. */
  release(nonce: string, opts?: CallOptions): Promise<void>;
  /** The current record with its judgement, or null when free. */
  inspect(opts?: CallOptions): Promise<LockInfo | null>;
  /**
   * Deletes the record only when it still carries `nonce` (operator's force
   * release). Returns false when the holder changed or the lock is free.
   */
  forceRelease(nonce: string, opts?: CallOptions): Promise<boolean>;
}

/** A datastore. */
export interface Provider {
  readonly type: string;

  /** Which of `hashes` are stored. Implementations batch the checks. */
  hasBlobs(hashes: string[], opts?: CallOptions): Promise<Set<string>>;
  /**
   * Stores a blob under its SHA-256 unless it is already there. The provider
   * verifies the content hashes to `hash` before it becomes visible, and
   * throws `ContentChangedError` when it does not.
   */
  putBlob(hash: string, source: BlobSource, opts?: CallOptions): Promise<void>;
  /** Streams a blob. Throws `NotFoundError` when it is missing. */
  getBlob(hash: string, opts?: CallOptions): Promise<ReadableStream<Uint8Array>>;

  /** Every model with a manifest and its version token, without reading bodies. */
  listManifests(opts?: CallOptions): Promise<ManifestListing[]>;
  /** The current manifest of a model, or null when it has none. Throws `CorruptError`. */
  getManifest(model: ModelRef, opts?: CallOptions): Promise<StoredManifest | null>;
  /**
   * Commits `manifest` (whose generation must be `expectedGeneration + 1`)
   * only if `expectedGeneration` is still current (0 = the model has no
   * manifest yet). Throws `ConflictError` with `current` on a lost race.
   */
  commitManifest(
    model: ModelRef,
    expectedGeneration: number,
    manifest: Manifest,
    opts?: CallOptions,
  ): Promise<{ version: string }>;

  /** A handle on one lock key. Cheap; does no I/O. */
  lock(key: LockKey): LockHandle;
  /** Every lock record (global and per model) with its judgement. */
  listLocks(opts?: CallOptions): Promise<LockInfo[]>;

  /** Type and location, secrets redacted. */
  describe(): { type: string; location: string };
  /** What the datastore can do. Optional: missing means all false. */
  capabilities?(): Capabilities;
  /** Checks the datastore exists and is initialised (`modelsync.json`). Throws `NotFoundError`. */
  open(opts?: CallOptions): Promise<void>;
  /** Creates the datastore marker `modelsync.json` with create-if-absent. */
  init(opts?: CallOptions): Promise<void>;
  /**
   * Live checks of the declared capabilities for `caps --probe`. Each check
   * says what it tested and whether it held.
   */
  probe?(opts?: CallOptions): Promise<ProbeCheck[]>;
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
  /** Aborted when the command is interrupted. */
  signal?: AbortSignal;
  /** This host's name and this process's pid, for lock records and stale checks. */
  host: string;
  pid: number;
  /** Clock-skew margin added before a lock judged by the local clock is stale. */
  skewMarginMs: number;
  /** Directory of the repository (for resolving relative paths in config). */
  baseDir: string;
}

/** What a provider module exports. */
export interface ProviderModule<C = unknown> {
  type: string;
  /** Validates the `datastore:` block of `modelsync.yaml` (without `type`). */
  configSchema: z.ZodType<C>;
  create(config: C, context: ProviderContext): Provider | Promise<Provider>;
}
