/**
 * An in-memory provider of the two primitives (records with compare-and-swap,
 * blobs) and a log capture, for unit tests of the lock manager, the lease and
 * the conformance kit. A test helper only.
 *
 * Several providers may share one {@linkcode MemoryLockStore}, each standing
 * for another process (its own host and pid), like processes sharing a
 * datastore. Tests can plant lock records, take the store down or make it
 * hang, and count calls per primitive.
 *
 * @example
 * ```ts
 * import { MemoryLockStore, memoryProvider } from "./_memory_provider.ts";
 * const store = new MemoryLockStore();
 * const p = memoryProvider(store, { host: "a", pid: 1 });
 * const r = await p.lock({ kind: "global" }).tryAcquire({
 *   holder: "me", host: "a", pid: 1, operation: "push", ttlMs: 1_000,
 * });
 * console.log(r.acquired); // true
 * ```
 * @module
 */
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { DatastoreError, NotFoundError } from "../errors.ts";
import { hashBytes } from "../model/hash.ts";
import type {
  BlobListing,
  CallOptions,
  Capabilities,
  Page,
  Provider,
  RecordListing,
  StoredRecord,
} from "../provider/contract.ts";
import { Datastore } from "../provider/datastore.ts";
import { parseModelRef } from "../model/ref.ts";
import { type LockKey, type LockRecord, lockRecordKey } from "./records.ts";

interface Stored {
  bytes: Uint8Array;
  version: string;
  modifiedMs: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The shared records and blobs of one in-memory "datastore". */
export class MemoryLockStore {
  /** Records by key. */
  readonly records = new Map<string, Stored>();
  readonly blobs = new Map<string, Uint8Array>();
  /** When true, every call throws a retryable `DatastoreError`. */
  down = false;
  /** When true, every call waits until its signal aborts. */
  hang = false;
  /** The datastore's clock. */
  now: () => number = Date.now;
  /** Counts calls per primitive, for tests. */
  readonly calls = new Map<string, number>();
  /** When false, conditional writes are ignored (a broken store, for the kit's own test). */
  honoursConditions = true;
  #seq = 0;

  /** A fresh version token. */
  nextVersion(): string {
    return `v${++this.#seq}`;
  }

  /** Plants a lock record as another process would have written it (written at its renewedAt). */
  put(record: LockRecord): void {
    this.records.set(lockRecordKey(lockKeyFromName(record.key)), {
      bytes: encoder.encode(JSON.stringify(record)),
      version: this.nextVersion(),
      modifiedMs: Date.parse(record.renewedAt),
    });
  }

  /** The lock record of a lock name (`"global"` or `type/id`), or undefined. */
  get(name: string): LockRecord | undefined {
    const r = this.records.get(lockRecordKey(lockKeyFromName(name)));
    return r === undefined ? undefined : JSON.parse(decoder.decode(r.bytes)) as LockRecord;
  }

  /** Removes the lock record of a lock name. */
  remove(name: string): void {
    this.records.delete(lockRecordKey(lockKeyFromName(name)));
  }

  /** Number of lock records. */
  get lockCount(): number {
    return [...this.records.keys()].filter((k) => k.startsWith("leases/")).length;
  }

  /** Simulates one datastore round trip: faults, latency and the signal. */
  async call(op: string, opts: CallOptions = {}): Promise<void> {
    this.calls.set(op, (this.calls.get(op) ?? 0) + 1);
    opts.signal?.throwIfAborted();
    if (this.down) {
      throw new DatastoreError(`Memory datastore is down (${op}); retry later.`, {
        retryable: true,
      });
    }
    if (this.hang) {
      await new Promise<never>((_, reject) => {
        const signal = opts.signal;
        if (signal === undefined) return; // hangs forever: only use with a signal
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    }
    await Promise.resolve();
    opts.signal?.throwIfAborted();
  }
}

function lockKeyFromName(name: string): LockKey {
  return name === "global" ? { kind: "global" } : { kind: "model", model: parseModelRef(name) };
}

/** Capabilities of a scoped in-memory store. */
export const MEMORY_SCOPED_CAPS: Readonly<Capabilities> = Object.freeze({
  scopedSync: true,
  atomicCommit: true,
  serverTime: true,
  rangedReads: true,
  maxConcurrency: 4,
});

/** The primitives over a {@linkcode MemoryLockStore}. */
export class MemoryProvider implements Provider {
  readonly type = "memory";
  readonly #s: MemoryLockStore;
  capabilities?: () => Capabilities;

  constructor(store: MemoryLockStore, caps: Capabilities | "missing" | "throws" | "null") {
    this.#s = store;
    if (caps === "throws") {
      this.capabilities = () => {
        throw new Error("capabilities exploded");
      };
    } else if (caps === "null") {
      this.capabilities = () => null as unknown as Capabilities;
    } else if (caps !== "missing") {
      this.capabilities = () => ({ ...caps });
    }
  }

  async hasBlobs(hashes: string[], opts?: CallOptions): Promise<Set<string>> {
    await this.#s.call("hasBlobs", opts);
    return new Set(hashes.filter((h) => this.#s.blobs.has(h)));
  }

  async putBlob(
    hash: string,
    source: Parameters<Provider["putBlob"]>[1],
    opts?: CallOptions,
  ): Promise<void> {
    await this.#s.call("putBlob", opts);
    const bytes = source.kind === "bytes" ? source.bytes : await Deno.readFile(source.path);
    if (hashBytes(bytes) !== hash) {
      const { ContentChangedError } = await import("../errors.ts");
      throw new ContentChangedError(`Content does not hash to ${hash}.`);
    }
    this.#s.blobs.set(hash, bytes.slice());
  }

  async getBlob(
    hash: string,
    opts?: Parameters<Provider["getBlob"]>[1],
  ): Promise<ReadableStream<Uint8Array>> {
    await this.#s.call("getBlob", opts);
    const b = this.#s.blobs.get(hash);
    if (b === undefined) throw new NotFoundError(`Blob ${hash} is missing.`);
    const r = opts?.range;
    const bytes = r === undefined ? b : b.subarray(r.offset, r.offset + r.length);
    return new Blob([bytes.slice()]).stream();
  }

  async listBlobs(opts?: CallOptions): Promise<Page<BlobListing>> {
    await this.#s.call("listBlobs", opts);
    return {
      items: [...this.#s.blobs].map(([hash, b]) => ({ hash, size: b.length, modifiedMs: 0 })),
    };
  }

  async deleteBlob(hash: string, opts?: CallOptions): Promise<void> {
    await this.#s.call("deleteBlob", opts);
    this.#s.blobs.delete(hash);
  }

  async getRecord(key: string, opts?: CallOptions): Promise<StoredRecord | null> {
    await this.#s.call("getRecord", opts);
    const r = this.#s.records.get(key);
    if (r === undefined) return null;
    return {
      bytes: r.bytes.slice(),
      version: r.version,
      modifiedMs: r.modifiedMs,
      storeNowMs: this.#s.now(),
    };
  }

  async createRecord(key: string, bytes: Uint8Array, opts?: CallOptions): Promise<string | null> {
    await this.#s.call("createRecord", opts);
    if (this.#s.honoursConditions && this.#s.records.has(key)) return null;
    return this.#write(key, bytes);
  }

  async replaceRecord(
    key: string,
    bytes: Uint8Array,
    version: string,
    opts?: CallOptions,
  ): Promise<string | null> {
    await this.#s.call("replaceRecord", opts);
    if (this.#s.honoursConditions && this.#s.records.get(key)?.version !== version) return null;
    return this.#write(key, bytes);
  }

  async deleteRecord(key: string, version: string, opts?: CallOptions): Promise<boolean> {
    await this.#s.call("deleteRecord", opts);
    const r = this.#s.records.get(key);
    if (r === undefined || (this.#s.honoursConditions && r.version !== version)) return false;
    this.#s.records.delete(key);
    return true;
  }

  async listRecords(prefix: string, opts?: CallOptions): Promise<Page<RecordListing>> {
    await this.#s.call("listRecords", opts);
    const items = [...this.#s.records].filter(([k]) => k.startsWith(prefix))
      .map(([key, r]) => ({ key, version: r.version, modifiedMs: r.modifiedMs }))
      .sort((a, b) => (a.key < b.key ? -1 : 1));
    return { items };
  }

  #write(key: string, bytes: Uint8Array): string {
    const version = this.#s.nextVersion();
    this.#s.records.set(key, { bytes: bytes.slice(), version, modifiedMs: this.#s.now() });
    return version;
  }

  describe() {
    return { type: "memory", location: "memory" };
  }
  open(): Promise<void> {
    return Promise.resolve();
  }
  init(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** How a memory provider behaves. */
export interface MemoryProviderOptions {
  /** This "process": judges same-host records by pid. */
  host: string;
  pid: number;
  /** Added to the ttl before a record is stale (default 0). */
  skewMarginMs?: number;
  /**
   * What `capabilities()` does: return these capabilities (default: scoped),
   * be missing, throw, or return null.
   */
  caps?: Capabilities | "missing" | "throws" | "null";
}

/**
 * A datastore over `store` as one "process" sees it: the primitives of a
 * {@linkcode MemoryProvider} with the lock protocol on top, judging records
 * by the store's clock.
 */
export function memoryProvider(store: MemoryLockStore, opts: MemoryProviderOptions): Datastore {
  const caps = opts.caps ?? MEMORY_SCOPED_CAPS;
  const ds = new Datastore(new MemoryProvider(store, caps), {
    host: opts.host,
    pid: opts.pid,
    skewMarginMs: opts.skewMarginMs ?? 0,
  });
  ds.useCapabilities({ serverTime: typeof caps === "object" ? caps.serverTime : false });
  return ds;
}

/** Log lines captured by {@linkcode captureLogs}; dispose to reset LogTape. */
export interface LogCapture extends AsyncDisposable {
  /** Rendered messages of category `["modelsync", ...]`, in order. */
  readonly messages: string[];
  /** The raw records. */
  readonly records: LogRecord[];
}

/**
 * Configures LogTape with an in-memory sink for `["modelsync"]` (tests only;
 * the CLI configures logging in `main.ts`). Use with `await using`.
 */
export async function captureLogs(): Promise<LogCapture> {
  const records: LogRecord[] = [];
  const messages: string[] = [];
  await configure({
    reset: true,
    sinks: {
      memory: (record: LogRecord) => {
        records.push(record);
        messages.push(record.message.map((part) => String(part)).join(""));
      },
    },
    loggers: [
      { category: ["modelsync"], sinks: ["memory"], lowestLevel: "debug" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "warning" },
    ],
  });
  return { records, messages, [Symbol.asyncDispose]: () => reset() };
}
