/**
 * An in-memory provider (and a log capture) for the lock manager's unit tests.
 * A test helper only:
 * the lock operations are faithful (create-exclusive, compare-and-swap by
 * nonce, stale judgement by {@linkcode judgeLock}); blobs and manifests throw.
 *
 * Several providers may share one {@linkcode MemoryLockStore}, each standing
 * for another process (its own host and pid), like processes sharing a
 * datastore. Tests can plant records, take the store down or make it hang.
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
import { DatastoreError, LeaseLostError } from "../errors.ts";
import type {
  AcquireResult,
  CallOptions,
  Capabilities,
  LockHandle,
  LockInfo,
  LockKey,
  LockRecord,
  LockRequest,
  Provider,
} from "../provider/contract.ts";
import { judgeLock } from "../provider/stale.ts";
import { lockKeyName } from "./lease.ts";

/** The shared lock records of one in-memory "datastore". */
export class MemoryLockStore {
  /** Lock records by key name (`"global"` or `type/id`). */
  readonly records = new Map<string, LockRecord>();
  /** When true, every lock call throws a retryable `DatastoreError`. */
  down = false;
  /** When true, every lock call waits until its signal aborts. */
  hang = false;
  /** The datastore's clock. */
  now: () => number = Date.now;
  /** Counts calls per operation, for tests. */
  readonly calls = new Map<string, number>();

  /** Plants a record as another process would have written it. */
  put(record: LockRecord): void {
    this.records.set(record.key, { ...record });
  }

  /** The record under a key name, or undefined. */
  get(name: string): LockRecord | undefined {
    const r = this.records.get(name);
    return r === undefined ? undefined : { ...r };
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

/** Capabilities of a scoped in-memory store. */
export const MEMORY_SCOPED_CAPS: Readonly<Capabilities> = Object.freeze({
  scopedSync: true,
  atomicCommit: true,
  serverTime: true,
  maxConcurrency: 4,
});

class MemoryLockHandle implements LockHandle {
  readonly key: LockKey;
  #store: MemoryLockStore;
  #name: string;
  #judge: (r: LockRecord) => LockInfo;

  constructor(store: MemoryLockStore, key: LockKey, judge: (r: LockRecord) => LockInfo) {
    this.key = key;
    this.#store = store;
    this.#name = lockKeyName(key);
    this.#judge = judge;
  }

  async tryAcquire(req: LockRequest, opts?: CallOptions): Promise<AcquireResult> {
    await this.#store.call("tryAcquire", opts);
    const current = this.#store.records.get(this.#name);
    const nowIso = new Date(this.#store.now()).toISOString();
    const record: LockRecord = {
      key: this.#name,
      holder: req.holder,
      host: req.host,
      pid: req.pid,
      operation: req.operation,
      acquiredAt: nowIso,
      renewedAt: nowIso,
      ttlMs: req.ttlMs,
      nonce: crypto.randomUUID(),
      ...(req.repo === undefined ? {} : { repo: req.repo }),
    };
    if (current === undefined) {
      this.#store.records.set(this.#name, record); // create-exclusive: nothing was there
      return { acquired: true, record: { ...record } };
    }
    const info = this.#judge(current);
    if (!info.stale) return { acquired: false, current: info };
    // Compare-and-swap: another round trip, then replace only the record we judged.
    await this.#store.call("takeover", opts);
    const again = this.#store.records.get(this.#name);
    if (again === undefined || again.nonce !== current.nonce) {
      return again === undefined
        ? this.tryAcquire(req, opts)
        : { acquired: false, current: this.#judge(again) };
    }
    this.#store.records.set(this.#name, record);
    return { acquired: true, record: { ...record }, tookOver: { ...current } };
  }

  async renew(nonce: string, opts?: CallOptions): Promise<LockRecord> {
    await this.#store.call("renew", opts);
    const current = this.#store.records.get(this.#name);
    if (current === undefined || current.nonce !== nonce) {
      throw new LeaseLostError(
        `Lost the lock on ${this.#name}: ${
          current === undefined
            ? "it was released by force (its record is gone)"
            : `it was taken over by ${current.holder}`
        }; work stopped before committing. Rerun the command.`,
      );
    }
    const renewed = { ...current, renewedAt: new Date(this.#store.now()).toISOString() };
    this.#store.records.set(this.#name, renewed);
    return { ...renewed };
  }

  async release(nonce: string, opts?: CallOptions): Promise<void> {
    await this.#store.call("release", opts);
    if (this.#store.records.get(this.#name)?.nonce === nonce) {
      this.#store.records.delete(this.#name);
    }
  }

  async inspect(opts?: CallOptions): Promise<LockInfo | null> {
    await this.#store.call("inspect", opts);
    const current = this.#store.records.get(this.#name);
    return current === undefined ? null : this.#judge({ ...current });
  }

  async forceRelease(nonce: string, opts?: CallOptions): Promise<boolean> {
    await this.#store.call("forceRelease", opts);
    if (this.#store.records.get(this.#name)?.nonce !== nonce) return false;
    this.#store.records.delete(this.#name);
    return true;
  }
}

function notImplemented(what: string): never {
  throw new Error(`${what} is not implemented in the memory provider (a lock test helper).`);
}

/** A provider over `store` whose lock parts work and whose data parts throw. */
export function memoryProvider(store: MemoryLockStore, opts: MemoryProviderOptions): Provider {
  const judge = (r: LockRecord): LockInfo =>
    judgeLock(r, {
      nowMs: store.now(),
      skewMarginMs: opts.skewMarginMs ?? 0,
      host: opts.host,
      pid: opts.pid,
    });
  const provider: Provider = {
    type: "memory",
    hasBlobs: () => notImplemented("hasBlobs"),
    putBlob: () => notImplemented("putBlob"),
    getBlob: () => notImplemented("getBlob"),
    listManifests: () => notImplemented("listManifests"),
    getManifest: () => notImplemented("getManifest"),
    commitManifest: () => notImplemented("commitManifest"),
    lock: (key) => new MemoryLockHandle(store, key, judge),
    listLocks: async (callOpts) => {
      await store.call("listLocks", callOpts);
      return [...store.records.values()].map((r) => judge({ ...r }));
    },
    describe: () => ({ type: "memory", location: "memory" }),
    open: () => Promise.resolve(),
    init: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  const caps = opts.caps ?? MEMORY_SCOPED_CAPS;
  if (caps === "throws") {
    provider.capabilities = () => {
      throw new Error("capabilities exploded");
    };
  } else if (caps === "null") {
    provider.capabilities = () => null as unknown as Capabilities;
  } else if (caps !== "missing") {
    provider.capabilities = () => ({ ...caps });
  }
  return provider;
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
