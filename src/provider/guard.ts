/**
 * Deadlines and retries around any provider, applied once by the registry so
 * that every datastore call — built-in or third-party — has a hard deadline
 * (SPEC §7), and idempotent reads and blob transfers are retried with capped
 * exponential backoff and jitter on transient faults.
 *
 * Compare-and-swap writes of records (create, replace, delete) are never
 * retried here: a lost reply may hide a success, and their callers already
 * handle a conflict (rebase) or a busy lock (the lock manager's wait).
 *
 * @example
 * ```ts
 * import { guardProvider } from "./guard.ts";
 * import type { Provider } from "./contract.ts";
 * declare const inner: Provider;
 * const p = guardProvider(inner, { callTimeoutMs: 30_000 });
 * ```
 * @module
 */
import { Backoff, sleep } from "../async.ts";
import { InFlight, type InFlightCall } from "./_in_flight.ts";
import { formatDuration } from "../duration.ts";
import { DatastoreError, isRetryable } from "../errors.ts";
import type {
  BlobListing,
  BlobSource,
  CallOptions,
  Capabilities,
  GetBlobOptions,
  HasBlobsOptions,
  ListOptions,
  Page,
  Provider,
  RecordListing,
  StoredRecord,
} from "./contract.ts";

function withCursor(c: CallOptions, opts: ListOptions | undefined): ListOptions {
  return opts?.cursor === undefined ? c : { ...c, cursor: opts.cursor };
}

/** Tuning of {@linkcode guardProvider}. */
export interface GuardOptions {
  /** Deadline of one call (blob transfers get more per MiB, see below). */
  callTimeoutMs: number;
  /** Attempts of an idempotent call on transient faults (default 4). */
  attempts?: number;
  /** Extra deadline per MiB of a blob transfer (default 1 s: at least 1 MiB/s). */
  msPerMiB?: number;
  /** First and largest retry delay (defaults 200 ms and 5 s). */
  backoff?: { initialMs: number; maxMs: number };
  /** Called once per request sent (each attempt), with its kind, e.g. "putBlob". */
  onCall?: (op: string) => void;
}

const MiB = 1024 * 1024;

/** Wraps a provider so every call has a deadline and idempotent calls retry. */
export function guardProvider(inner: Provider, opts: GuardOptions): Provider {
  return new GuardedProvider(inner, opts);
}

class GuardedProvider implements Provider {
  readonly #inner: Provider;
  readonly #opts: Required<GuardOptions>;
  readonly #inFlight = new InFlight();
  readonly type: string;
  capabilities?: () => Capabilities;

  constructor(inner: Provider, opts: GuardOptions) {
    this.#inner = inner;
    this.type = inner.type;
    this.#opts = {
      attempts: 4,
      msPerMiB: 1_000,
      backoff: { initialMs: 200, maxMs: 5_000 },
      onCall: () => {},
      ...opts,
    };
    // Keep a missing capabilities() missing: readCapabilities warns about it.
    if (typeof inner.capabilities === "function") this.capabilities = () => inner.capabilities!();
  }

  hasBlobs(hashes: string[], opts?: HasBlobsOptions): Promise<Set<string>> {
    const fresh = opts?.fresh === true;
    return this.#call(
      "hasBlobs",
      opts,
      (c) => this.#inner.hasBlobs(hashes, fresh ? { ...c, fresh } : c),
      { retry: true },
    );
  }

  putBlob(hash: string, source: BlobSource, opts?: CallOptions): Promise<void> {
    const size = source.kind === "file" ? source.size : source.bytes.byteLength;
    return this.#call("putBlob", opts, (c) => this.#inner.putBlob(hash, source, c), {
      retry: true,
      extraMs: Math.ceil(size / MiB) * this.#opts.msPerMiB,
    });
  }

  async getBlob(hash: string, opts?: GetBlobOptions): Promise<ReadableStream<Uint8Array>> {
    const range = opts?.range;
    const body = await this.#call(
      "getBlob",
      opts,
      (c) => this.#inner.getBlob(hash, range === undefined ? c : { ...c, range }),
      { retry: true },
    );
    // The call returns once the body starts; a body that then stalls gets a
    // deadline of its own: no chunk for callTimeoutMs fails the download.
    return withIdleDeadline(body, {
      idleMs: this.#opts.callTimeoutMs,
      error: () =>
        this.#timeoutError(`the rest of blob ${hash.slice(0, 12)}…`, this.#opts.callTimeoutMs),
    });
  }

  listBlobs(opts?: ListOptions): Promise<Page<BlobListing>> {
    return this.#call("listBlobs", opts, (c) => this.#inner.listBlobs(withCursor(c, opts)), {
      retry: true,
    });
  }

  deleteBlob(hash: string, opts?: CallOptions): Promise<void> {
    // Deleting twice is harmless: retried.
    return this.#call("deleteBlob", opts, (c) => this.#inner.deleteBlob(hash, c), { retry: true });
  }

  getRecord(key: string, opts?: CallOptions): Promise<StoredRecord | null> {
    return this.#call("getRecord", opts, (c) => this.#inner.getRecord(key, c), { retry: true });
  }

  createRecord(key: string, bytes: Uint8Array, opts?: CallOptions): Promise<string | null> {
    // Never retried (a lost answer may hide a success). If the deadline fires
    // but the store still creates the record later, the create is undone, so
    // that what the caller was told (it failed) stays true: nobody else has
    // seen a record that was never reported as made unless they built on it,
    // and then the delete on its version is refused.
    let late: Promise<string | null> | undefined;
    return this.#call("createRecord", opts, (c) => (late = this.#inner.createRecord(key, bytes, c)))
      .catch((err) => {
        late?.then((v) => (v === null ? undefined : this.#inner.deleteRecord(key, v)))
          .catch(() => {});
        throw err;
      });
  }

  replaceRecord(
    key: string,
    bytes: Uint8Array,
    version: string,
    opts?: CallOptions,
  ): Promise<string | null> {
    return this.#call(
      "replaceRecord",
      opts,
      (c) => this.#inner.replaceRecord(key, bytes, version, c),
    );
  }

  deleteRecord(key: string, version: string, opts?: CallOptions): Promise<boolean> {
    return this.#call("deleteRecord", opts, (c) => this.#inner.deleteRecord(key, version, c));
  }

  listRecords(prefix: string, opts?: ListOptions): Promise<Page<RecordListing>> {
    return this.#call(
      "listRecords",
      opts,
      (c) => this.#inner.listRecords(prefix, withCursor(c, opts)),
      {
        retry: true,
      },
    );
  }

  describe() {
    return this.#inner.describe();
  }

  open(opts?: CallOptions): Promise<void> {
    return this.#call("open", opts, (c) => this.#inner.open(c), { retry: true });
  }

  init(opts?: CallOptions): Promise<void> {
    return this.#call("init", opts, (c) => this.#inner.init(c), { retry: true });
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  /**
   * Runs one call under a deadline. The race with the deadline stops the
   * wait even when the inner call ignores its signal (a hung mount).
   */
  async #call<T>(
    op: string,
    opts: CallOptions | undefined,
    fn: (c: CallOptions) => Promise<T>,
    how: { retry?: boolean; extraMs?: number; scale?: number } = {},
  ): Promise<T> {
    const caller = opts?.signal;
    const deadlineMs = this.#opts.callTimeoutMs * (how.scale ?? 1) + (how.extraMs ?? 0);
    const attempts = how.retry ? Math.max(1, this.#opts.attempts) : 1;
    let backoff: Backoff | undefined;
    for (let attempt = 1;; attempt++) {
      caller?.throwIfAborted();
      // One controller per call, aborted by its deadline or by the caller.
      // (Not AbortSignal.any: it leaves a weak reference on the long-lived
      // caller signal per call, tens of thousands in a large push.) The
      // deadlines and the callers' signals are watched for all calls at once
      // (src/provider/_in_flight.ts): a timer and a listener per call cost
      // more than a small upload. The wait ends when the call settles or the
      // controller aborts, whichever is first.
      const call = new AbortController();
      let timedOut = false;
      let entry: InFlightCall | undefined;
      try {
        return await new Promise<T>((resolve, reject) => {
          const stop = (reason: unknown) => {
            call.abort(reason);
            reject(reason);
          };
          entry = {
            due: performance.now() + deadlineMs,
            expire: () => {
              timedOut = true;
              stop(this.#timeoutError(op, deadlineMs));
            },
            abort: stop,
          };
          this.#inFlight.add(entry, caller);
          this.#opts.onCall(op);
          fn({ signal: call.signal }).then(resolve, reject);
        });
      } catch (err) {
        const error = timedOut && !caller?.aborted ? call.signal.reason : err;
        if (attempt >= attempts || caller?.aborted || !isRetryable(error)) throw error;
        backoff ??= new Backoff(this.#opts.backoff);
        await sleep(backoff.next(), caller);
      } finally {
        if (entry !== undefined) this.#inFlight.delete(entry, caller);
      }
    }
  }

  #timeoutError(op: string, ms: number): DatastoreError {
    const where = this.#inner.describe();
    return new DatastoreError(
      `The ${where.type} datastore at ${where.location} did not answer ${op} within ${
        formatDuration(ms)
      }: ` +
        `check that it is reachable, or raise --call-timeout.`,
      { retryable: true },
    );
  }
}

/**
 * A stream that passes `body` through and fails with `error()` (cancelling
 * `body`) when no chunk arrives for `idleMs`.
 */
export function withIdleDeadline(
  body: ReadableStream<Uint8Array>,
  opts: { idleMs: number; error: () => Error },
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(opts.error()), opts.idleMs);
      });
      try {
        const r = await Promise.race([reader.read(), stalled]);
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      } catch (err) {
        reader.cancel(err).catch(() => {});
        controller.error(err);
      } finally {
        clearTimeout(timer);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}
