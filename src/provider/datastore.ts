/**
 * The datastore as the rest of modelsync sees it: a provider's two
 * primitives plus everything written once above them (SPEC §4) — the
 * datastore marker, heads and history (`src/model/commits.ts`), leases
 * (`src/lock/records.ts`) and the live probe (`./probe.ts`).
 *
 * `open()` reads the marker `config` (`{"format": 2}`; a format-1 datastore
 * is refused with the remedy `modelsync migrate`) and then repeats its
 * create-if-absent: a store that accepts that second create ignores
 * conditional writes, so every lock and commit on it is refused and its
 * capabilities read all false, with the reason.
 *
 * @example
 * ```ts ignore
 * import { Datastore } from "./datastore.ts";
 * const ds = new Datastore(provider, { host: "h", pid: 1, skewMarginMs: 5_000 });
 * await ds.open();
 * const heads = await ds.listManifests();
 * ```
 * @module
 */
import { randomBytes } from "node:crypto";
import { CorruptError, DatastoreError, NotFoundError, UsageError } from "../errors.ts";
import {
  commitManifest,
  getHead,
  history,
  type HistoryEntry,
  listHeads,
  type ManifestListing,
  type StoredManifest,
} from "../model/commits.ts";
import type { Manifest } from "../model/manifest.ts";
import type { ModelRef } from "../model/ref.ts";
import { type LockHandle, type LockInfo, type LockKey, RecordLocks } from "../lock/records.ts";
import {
  type BlobSource,
  type CallOptions,
  type Capabilities,
  DATASTORE_FORMAT,
  type GetBlobOptions,
  type HasBlobsOptions,
  type ProbeCheck,
  type Provider,
} from "./contract.ts";
import { CONFIG_KEY, FORMAT1_MARKER_KEY } from "./keys.ts";
import { runProbe } from "./probe.ts";

export { DATASTORE_FORMAT };

/** Who this process is, for judging lock records. */
export interface DatastoreContext {
  host: string;
  pid: number;
  /** Added before a lock record judged by the local clock is stale. */
  skewMarginMs: number;
}

/** What the marker says. */
export interface Marker {
  format: number;
  /** Random id of this datastore, made by `init`. */
  id: string;
  createdAt: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A provider with the protocol on top. */
export class Datastore {
  /** The provider's primitives (already wrapped by the guard). */
  readonly provider: Provider;
  readonly type: string;
  readonly #ctx: DatastoreContext;
  #locks: RecordLocks | undefined;
  #caps: Pick<Capabilities, "serverTime" | "clockResolutionMs"> | undefined;
  /**
   * Set when locks and commits cannot work on this store (it ignores
   * conditional writes, or refuses these credentials' writes): why, and the
   * remedy. Reads still work.
   */
  #refuse: { readOnly: boolean; why: string; remedy: string } | undefined;
  #marker: Marker | undefined;
  /** Present exactly when the provider has it, so a missing one stays missing. */
  capabilities?: () => Capabilities;

  constructor(provider: Provider, ctx: DatastoreContext) {
    this.provider = provider;
    this.type = provider.type;
    this.#ctx = ctx;
    if (typeof provider.capabilities === "function") {
      this.capabilities = () => {
        const declared = provider.capabilities!();
        if (this.#refuse === undefined) return declared;
        const mc = (declared as Partial<Capabilities> | null)?.maxConcurrency;
        return {
          scopedSync: false,
          atomicCommit: false,
          serverTime: false,
          rangedReads: false,
          maxConcurrency: typeof mc === "number" ? mc : 4,
          limitation: this.#limitation(),
        };
      };
    }
  }

  /** Tells the lock layer the capabilities read once for this command. */
  useCapabilities(caps: Pick<Capabilities, "serverTime" | "clockResolutionMs">): void {
    this.#caps = caps;
    this.#locks = undefined;
  }

  /**
   * True when these credentials may read but not write: locks and commits
   * are refused when tried, and read-only commands need no warning.
   */
  get readOnly(): boolean {
    return this.#refuse?.readOnly === true;
  }

  /**
   * True when every lock and commit on this datastore is refused (it ignores
   * conditional writes, or these credentials may not write): a push then
   * uploads nothing before it asks for its locks.
   */
  get refusesWrites(): boolean {
    return this.#refuse !== undefined;
  }

  /** The marker read by `open()` or written by `init()`. */
  get marker(): Marker | undefined {
    return this.#marker;
  }

  // --- blobs --------------------------------------------------------------

  /** Which of `hashes` are stored (`fresh`: asked of the store, not of a provider's memory). */
  hasBlobs(hashes: string[], opts?: HasBlobsOptions): Promise<Set<string>> {
    return this.provider.hasBlobs(hashes, opts);
  }

  putBlob(hash: string, source: BlobSource, opts?: CallOptions): Promise<void> {
    return this.provider.putBlob(hash, source, opts);
  }

  getBlob(hash: string, opts?: GetBlobOptions): Promise<ReadableStream<Uint8Array>> {
    return this.provider.getBlob(hash, opts);
  }

  // --- heads and history --------------------------------------------------

  /** Every model with a head and its version token (one listing, no bodies). */
  listManifests(opts?: CallOptions): Promise<ManifestListing[]> {
    return listHeads(this.provider, opts);
  }

  /** The model's current manifest, or null. */
  getManifest(model: ModelRef, opts?: CallOptions): Promise<StoredManifest | null> {
    return getHead(this.provider, model, opts);
  }

  /** Commits on top of `expected` by compare-and-swap (`ConflictError` on a lost race). */
  commitManifest(
    model: ModelRef,
    expected: StoredManifest | null,
    manifest: Manifest,
    opts?: CallOptions,
  ): Promise<{ version: string; manifest: Manifest }> {
    this.#assertWritable("commit");
    return commitManifest(this.provider, model, expected, manifest, opts);
  }

  /** The model's generations, newest first. */
  history(
    model: ModelRef,
    opts?: CallOptions & { head?: StoredManifest | null },
  ): AsyncGenerator<HistoryEntry> {
    return history(this.provider, model, opts);
  }

  // --- locks --------------------------------------------------------------

  /** A handle on one lock key. Cheap; does no I/O. */
  lock(key: LockKey): LockHandle {
    const h = this.#lockStore().handle(key);
    if (this.#refuse === undefined) return h;
    return {
      ...h,
      tryAcquire: () => Promise.reject(this.#refusal(`take ${describeKey(key)}`)),
      renew: () => Promise.reject(this.#refusal(`renew ${describeKey(key)}`)),
    };
  }

  /** Every lock record with its judgement. */
  listLocks(opts?: CallOptions): Promise<LockInfo[]> {
    return this.#lockStore().list(opts);
  }

  #lockStore(): RecordLocks {
    return this.#locks ??= new RecordLocks(this.provider, {
      ...this.#ctx,
      caps: this.#caps ?? { serverTime: false },
    });
  }

  // --- the datastore ------------------------------------------------------

  describe(): { type: string; location: string } {
    return this.provider.describe();
  }

  /**
   * Checks the store and its marker, and that it honours conditional writes.
   * Throws `NotFoundError` (exit 3) when it is not initialised, `UsageError`
   * (exit 2) for a format-1 datastore.
   */
  async open(opts: CallOptions & { format1?: boolean } = {}): Promise<void> {
    await this.provider.open(opts);
    let key = CONFIG_KEY;
    let stored = await this.provider.getRecord(CONFIG_KEY, opts);
    if (stored === null) {
      const legacy = await this.provider.getRecord(FORMAT1_MARKER_KEY, opts);
      if (legacy !== null && formatOf(legacy.bytes) !== 1 && formatOf(legacy.bytes) !== 2) {
        throw this.#garbledLegacy();
      }
      if (legacy !== null && formatOf(legacy.bytes) === 1) {
        if (!opts.format1) throw this.#format1();
        // `migrate` opens a format-1 datastore: its marker stands in below.
        this.#marker = { format: 1, id: "", createdAt: "" };
        key = FORMAT1_MARKER_KEY;
        stored = legacy;
      }
    }
    if (stored === null) {
      const where = this.describe();
      throw new NotFoundError(
        `The ${where.type} datastore ${where.location} is not initialised (no datastore ` +
          `marker): run "modelsync init" with it, or check the datastore named.`,
      );
    }
    if (key === CONFIG_KEY) this.#marker = this.#parseMarker(stored.bytes);
    // The marker exists: a second create-if-absent must be refused. A store
    // that accepts it ignores conditional writes (some minimal S3 servers).
    // Credentials that may read but not write (a read-only key, a read-only
    // mount) fail this write: reads (pull, status, log, verify) still work,
    // and locks and commits are refused with the store's own reason.
    let created;
    try {
      created = await this.provider.createRecord(key, stored.bytes, opts);
    } catch (err) {
      if (!(err instanceof DatastoreError) || err.retryable || opts.signal?.aborted) throw err;
      this.#refuse = {
        readOnly: true,
        why: "refused a write with these credentials",
        remedy: `Use credentials that may write to it (it answered: ${answerOf(err, this)})`,
      };
      return;
    }
    if (created !== null) {
      this.#refuse = {
        readOnly: false,
        why: "ignores conditional writes (create-if-absent, compare-and-swap)",
        remedy: "Use a store that honours them",
      };
    }
  }

  /**
   * Creates the store and its markers (create-if-absent); an existing
   * format-2 marker is fine. Besides `config`, `modelsync.json` says
   * `{"format": 2}`, so that a modelsync of format 1 refuses the datastore
   * (asking to upgrade) instead of taking it for an empty one.
   */
  async init(opts: CallOptions = {}): Promise<void> {
    await this.provider.init(opts);
    const existing = await this.provider.getRecord(CONFIG_KEY, opts);
    const legacy = await this.provider.getRecord(FORMAT1_MARKER_KEY, opts);
    if (existing === null && legacy !== null && formatOf(legacy.bytes) === 1) {
      throw this.#format1();
    }
    if (legacy !== null && formatOf(legacy.bytes) !== 1 && formatOf(legacy.bytes) !== 2) {
      throw this.#garbledLegacy();
    }
    // Joining an initialised datastore writes nothing, so read-only
    // credentials can run init too.
    if (existing !== null && legacy !== null && formatOf(legacy.bytes) === 2) {
      this.#marker = this.#parseMarker(existing.bytes);
      return;
    }
    await this.writeMarker(opts);
  }

  /**
   * Writes the format-2 markers if absent: `config`, and `modelsync.json`
   * `{"format": 2}` (replacing a format-1 one: `migrate`).
   */
  async writeMarker(opts: CallOptions = {}): Promise<void> {
    this.#assertWritable("write the datastore marker");
    const marker: Marker = {
      format: DATASTORE_FORMAT,
      id: randomBytes(8).toString("hex"),
      createdAt: new Date().toISOString(),
    };
    const body = encoder.encode(JSON.stringify(marker) + "\n");
    if ((await this.provider.createRecord(CONFIG_KEY, body, opts)) !== null) {
      this.#marker = marker;
    } else {
      const theirs = await this.provider.getRecord(CONFIG_KEY, opts);
      if (theirs === null) throw new DatastoreError(`The datastore marker vanished; retry.`);
      this.#marker = this.#parseMarker(theirs.bytes);
    }
    const tripwire = encoder.encode(JSON.stringify({ format: DATASTORE_FORMAT }) + "\n");
    const legacy = await this.provider.getRecord(FORMAT1_MARKER_KEY, opts);
    if (legacy === null) await this.provider.createRecord(FORMAT1_MARKER_KEY, tripwire, opts);
    else if (formatOf(legacy.bytes) === 1) {
      await this.provider.replaceRecord(FORMAT1_MARKER_KEY, tripwire, legacy.version, opts);
    }
  }

  /** Live checks of the declared capabilities (`caps --probe`), given as read once. */
  probe(opts: CallOptions & { caps?: Partial<Capabilities> } = {}): Promise<ProbeCheck[]> {
    return runProbe(this.provider, opts);
  }

  close(): Promise<void> {
    return this.provider.close();
  }

  #parseMarker(bytes: Uint8Array): Marker {
    const where = this.describe();
    let data: unknown;
    try {
      data = JSON.parse(decoder.decode(bytes));
    } catch (err) {
      throw new CorruptError(
        `The datastore marker (${CONFIG_KEY}) of ${where.location} is not valid JSON: restore ` +
          `it from a backup, or rewrite it as {"format": ${DATASTORE_FORMAT}}.`,
        { cause: err },
      );
    }
    const m = data as Partial<Marker> | null;
    const format = m?.format;
    if (typeof format === "number" && Number.isInteger(format) && format > DATASTORE_FORMAT) {
      throw new DatastoreError(
        `The ${where.type} datastore ${where.location} uses format ${format}, newer than this ` +
          `modelsync reads (${DATASTORE_FORMAT}): upgrade modelsync.`,
      );
    }
    if (format !== DATASTORE_FORMAT) {
      throw new CorruptError(
        `The datastore marker (${CONFIG_KEY}) of ${where.location} is garbled (format ` +
          `${JSON.stringify(format)}): rewrite it as {"format": ${DATASTORE_FORMAT}}.`,
      );
    }
    return {
      format,
      id: typeof m?.id === "string" ? m.id : "",
      createdAt: typeof m?.createdAt === "string" ? m.createdAt : "",
    };
  }

  #garbledLegacy(): CorruptError {
    const where = this.describe();
    return new CorruptError(
      `The datastore marker ${FORMAT1_MARKER_KEY} of ${where.location} is garbled: restore it ` +
        `from a backup, or rewrite it as {"format": ${DATASTORE_FORMAT}} if this is a ` +
        `datastore of this version.`,
    );
  }

  #format1(): UsageError {
    const where = this.describe();
    return new UsageError(
      `The ${where.type} datastore ${where.location} uses datastore format 1, which this ` +
        `modelsync no longer reads: run "modelsync migrate" once (from any repository that ` +
        `uses it) to convert it in place to format ${DATASTORE_FORMAT}.`,
    );
  }

  #limitation(): string {
    const where = this.describe();
    return `The ${where.type} datastore ${where.location} ${this.#refuse!.why}: locks and ` +
      `commits are refused on it; reads still work. ${this.#refuse!.remedy}.`;
  }

  #assertWritable(what: string): void {
    if (this.#refuse !== undefined) throw this.#refusal(what);
  }

  #refusal(what: string): DatastoreError {
    const where = this.describe();
    return new DatastoreError(
      `Cannot ${what}: the ${where.type} datastore ${where.location} ${this.#refuse!.why}, ` +
        `so no lock or commit on it can be done safely. ${this.#refuse!.remedy}; ` +
        `"modelsync pull" still reads.`,
    );
  }
}

/** What the store answered, without the provider's own "Cannot … on the datastore X: ". */
function answerOf(err: Error, ds: Datastore): string {
  const { location } = ds.describe();
  const at = err.message.indexOf(location);
  const colon = at < 0 ? -1 : err.message.indexOf(": ", at + location.length);
  return (colon < 0 ? err.message : err.message.slice(colon + 2)).replace(/\.$/, "");
}

/** The `format` of a marker's bytes, or undefined when it has none. */
function formatOf(bytes: Uint8Array): unknown {
  try {
    return (JSON.parse(decoder.decode(bytes)) as { format?: unknown } | null)?.format;
  } catch {
    return undefined;
  }
}

function describeKey(key: LockKey): string {
  return key.kind === "global"
    ? "the global lock"
    : `the lock on ${key.model.type}/${key.model.id}`;
}
