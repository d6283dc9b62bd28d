/**
 * A modelsync datastore in one SQLite database file, through Deno's built-in
 * `node:sqlite`. It implements only the two primitives of the provider
 * contract; modelsync writes leases, commits, history and the datastore
 * marker above them.
 *
 * Tables (see README.md):
 * ```
 * records (key PRIMARY KEY, bytes, version, modified_ms)    compare-and-swap documents
 * blobs   (hash PRIMARY KEY, size, modified_ms, upload, chunk_bytes)
 * chunks  (upload, seq, bytes)                              a blob's content, 1 MiB per row
 * uploads (upload PRIMARY KEY, started_ms)                  multi-chunk uploads in progress
 * ```
 *
 * Every write is one `BEGIN IMMEDIATE` transaction, so a conditional write
 * (`UPDATE … WHERE key = ? AND version = ?`, then checking `changes`) is a
 * true compare-and-swap, also between processes. The database runs in WAL
 * mode (readers never wait for a writer) with a short `busy_timeout`; a
 * writer that finds the database locked by another process retries with
 * backoff, asynchronously, until its call's signal aborts.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { createHash, randomUUID } from "node:crypto";
import { dirname } from "node:path";
import {
  type BlobListing,
  type BlobSource,
  type CallOptions,
  type Capabilities,
  ContentChangedError,
  DatastoreError,
  type GetBlobOptions,
  type ListOptions,
  NotFoundError,
  type Page,
  type Provider,
  type RecordListing,
  type StoredRecord,
  UsageError,
} from "@modelsync/cli/provider";

/** Bytes per row of `chunks`. Stored with each blob, so a later change keeps old blobs readable. */
export const CHUNK_BYTES = 1024 * 1024;
/** How long one statement waits inside SQLite for another process's lock. */
const BUSY_TIMEOUT_MS = 25;
/** How long a call without a signal keeps retrying a locked database. */
const BUSY_BUDGET_MS = 30_000;
/** Hashes per `hasBlobs` query. */
const HAS_BATCH = 500;
/** An upload older than this with no blob row is left over from a killed process. */
const STALE_UPLOAD_MS = 24 * 60 * 60 * 1000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS records (
  key TEXT PRIMARY KEY,
  bytes BLOB NOT NULL,
  version TEXT NOT NULL,
  modified_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS blobs (
  hash TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  modified_ms INTEGER NOT NULL,
  upload TEXT NOT NULL,
  chunk_bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
  upload TEXT NOT NULL,
  seq INTEGER NOT NULL,
  bytes BLOB NOT NULL,
  PRIMARY KEY (upload, seq)
);
CREATE TABLE IF NOT EXISTS uploads (
  upload TEXT PRIMARY KEY,
  started_ms INTEGER NOT NULL
);
`;
const TABLES = ["records", "blobs", "chunks", "uploads"];

/** Options of {@linkcode SqliteProvider}. */
export interface SqliteOptions {
  /** Absolute path of the database file. */
  path: string;
  /** Rows per page of `listRecords` and `listBlobs`. */
  pageSize: number;
}

/** A datastore in a SQLite database file. */
export class SqliteProvider implements Provider {
  readonly type = "sqlite";
  readonly #path: string;
  readonly #pageSize: number;
  #db: DatabaseSync | undefined;
  readonly #statements = new Map<string, StatementSync>();

  constructor(opts: SqliteOptions) {
    this.#path = opts.path;
    this.#pageSize = opts.pageSize;
  }

  // --- blobs --------------------------------------------------------------

  async hasBlobs(hashes: string[], opts: CallOptions = {}): Promise<Set<string>> {
    const wanted = [...new Set(hashes)];
    const found = new Set<string>();
    for (let i = 0; i < wanted.length; i += HAS_BATCH) {
      const batch = wanted.slice(i, i + HAS_BATCH);
      const sql = `SELECT hash FROM blobs WHERE hash IN (${batch.map(() => "?").join(",")})`;
      // Only the full-batch statement is worth keeping prepared.
      const rows = await this.#run(
        opts.signal,
        () =>
          (batch.length === HAS_BATCH ? this.#sql(sql) : this.#connect().prepare(sql)).all(
            ...batch,
          ),
      );
      for (const r of rows) found.add(String(r.hash));
    }
    return found;
  }

  async putBlob(hash: string, source: BlobSource, opts: CallOptions = {}): Promise<void> {
    const signal = opts.signal;
    if ((await this.hasBlobs([hash], opts)).size === 1) return;
    const upload = randomUUID();
    const sha = createHash("sha256");
    let size = 0;
    let seq = 0;
    // The first chunk is held back: a blob of one chunk (most files) is
    // written in one transaction, after its hash is checked.
    let first: Uint8Array | undefined;
    let started = false;
    let done = false;
    try {
      for await (const chunk of chunksOf(source, CHUNK_BYTES, signal)) {
        sha.update(chunk);
        size += chunk.length;
        if (first === undefined && !started) {
          first = chunk;
          continue;
        }
        if (!started) {
          // A second chunk: this upload spans several transactions. Record it
          // so a killed process's chunks can be found and removed later.
          await this.#write(signal, () => {
            this.#sql("INSERT INTO uploads (upload, started_ms) VALUES (?, ?)").run(
              upload,
              Date.now(),
            );
          });
          started = true;
          const held = first!;
          first = undefined;
          await this.#write(signal, () => this.#insertChunk(upload, seq++, held));
        }
        await this.#write(signal, () => this.#insertChunk(upload, seq++, chunk));
      }
      const got = sha.digest("hex");
      if (got !== hash) {
        throw new ContentChangedError(
          `Content for blob ${hash} hashes to ${got}: ${describeSource(source)} changed while ` +
            `being pushed. Rerun once it settles.`,
        );
      }
      await this.#write(signal, () => {
        const stored = this.#sql(
          "INSERT INTO blobs (hash, size, modified_ms, upload, chunk_bytes) VALUES (?, ?, ?, ?, ?) " +
            "ON CONFLICT (hash) DO NOTHING",
        ).run(hash, size, Date.now(), upload, CHUNK_BYTES);
        if (stored.changes === 0) {
          // Another writer stored it first: ours is not needed.
          this.#sql("DELETE FROM chunks WHERE upload = ?").run(upload);
        } else if (first !== undefined) {
          this.#insertChunk(upload, seq++, first);
        }
        this.#sql("DELETE FROM uploads WHERE upload = ?").run(upload);
      });
      done = true;
    } finally {
      if (started && !done) {
        // Failed or aborted part-way: remove what was written (without the
        // aborted signal; a killed process's leftovers go at the next open).
        await this.#write(undefined, () => this.#dropUpload(upload)).catch(() => {});
      }
    }
  }

  async getBlob(hash: string, opts: GetBlobOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const row = await this.#run(
      opts.signal,
      () => this.#sql("SELECT size, upload, chunk_bytes FROM blobs WHERE hash = ?").get(hash),
    );
    if (row === undefined) {
      throw new NotFoundError(`Blob ${hash} is not in the SQLite datastore ${this.#path}.`);
    }
    const size = Number(row.size);
    const upload = String(row.upload);
    const chunkBytes = Number(row.chunk_bytes);
    const range = opts.range;
    let pos = Math.min(range?.offset ?? 0, size);
    const end = range === undefined ? size : Math.min(size, pos + range.length);
    const signal = opts.signal;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (pos >= end) return controller.close();
        const seq = Math.floor(pos / chunkBytes);
        const within = pos % chunkBytes;
        const n = Math.min(chunkBytes - within, end - pos);
        // substr() on a BLOB counts bytes, from 1.
        const part = await this.#run(
          signal,
          () =>
            this.#sql("SELECT substr(bytes, ?, ?) AS part FROM chunks WHERE upload = ? AND seq = ?")
              .get(within + 1, n, upload, seq),
        );
        const bytes = part?.part;
        if (!(bytes instanceof Uint8Array) || bytes.length !== n) {
          throw new NotFoundError(
            `Blob ${hash} vanished from the SQLite datastore ${this.#path} while being read ` +
              `(deleted by gc?). Retry.`,
          );
        }
        controller.enqueue(bytes);
        pos += n;
      },
    });
  }

  async listBlobs(opts: ListOptions = {}): Promise<Page<BlobListing>> {
    const rows = await this.#run(
      opts.signal,
      () =>
        this.#sql("SELECT hash, size, modified_ms FROM blobs WHERE hash > ? ORDER BY hash LIMIT ?")
          .all(opts.cursor ?? "", this.#pageSize),
    );
    const items = rows.map((r) => ({
      hash: String(r.hash),
      size: Number(r.size),
      modifiedMs: Number(r.modified_ms),
    }));
    return this.#page(items, items.at(-1)?.hash);
  }

  async deleteBlob(hash: string, opts: CallOptions = {}): Promise<void> {
    await this.#write(opts.signal, () => {
      const row = this.#sql("SELECT upload FROM blobs WHERE hash = ?").get(hash);
      if (row === undefined) return;
      this.#sql("DELETE FROM blobs WHERE hash = ?").run(hash);
      this.#sql("DELETE FROM chunks WHERE upload = ?").run(String(row.upload));
    });
  }

  // --- records ------------------------------------------------------------

  async getRecord(key: string, opts: CallOptions = {}): Promise<StoredRecord | null> {
    const row = await this.#run(
      opts.signal,
      () => this.#sql("SELECT bytes, version, modified_ms FROM records WHERE key = ?").get(key),
    );
    if (row === undefined) return null;
    return {
      bytes: row.bytes as Uint8Array,
      version: String(row.version),
      modifiedMs: Number(row.modified_ms),
    };
  }

  createRecord(key: string, bytes: Uint8Array, opts: CallOptions = {}): Promise<string | null> {
    const version = randomUUID();
    return this.#write(opts.signal, () => {
      const r = this.#sql(
        "INSERT INTO records (key, bytes, version, modified_ms) VALUES (?, ?, ?, ?) " +
          "ON CONFLICT (key) DO NOTHING",
      ).run(key, bytes, version, Date.now());
      return r.changes === 1 ? version : null;
    });
  }

  replaceRecord(
    key: string,
    bytes: Uint8Array,
    version: string,
    opts: CallOptions = {},
  ): Promise<string | null> {
    const next = randomUUID();
    return this.#write(opts.signal, () => {
      const r = this.#sql(
        "UPDATE records SET bytes = ?, version = ?, modified_ms = ? WHERE key = ? AND version = ?",
      ).run(bytes, next, Date.now(), key, version);
      return r.changes === 1 ? next : null;
    });
  }

  deleteRecord(key: string, version: string, opts: CallOptions = {}): Promise<boolean> {
    return this.#write(opts.signal, () => {
      const r = this.#sql("DELETE FROM records WHERE key = ? AND version = ?").run(key, version);
      return r.changes === 1;
    });
  }

  async listRecords(prefix: string, opts: ListOptions = {}): Promise<Page<RecordListing>> {
    // Keys are ASCII, so every key starting with `prefix` sorts below prefix + U+FFFF.
    const rows = await this.#run(
      opts.signal,
      () =>
        this.#sql(
          "SELECT key, version, modified_ms FROM records " +
            "WHERE key >= ? AND key < ? AND key > ? ORDER BY key LIMIT ?",
        ).all(prefix, prefix + "\uffff", opts.cursor ?? "", this.#pageSize),
    );
    const items = rows.map((r) => ({
      key: String(r.key),
      version: String(r.version),
      modifiedMs: Number(r.modified_ms),
    }));
    return this.#page(items, items.at(-1)?.key);
  }

  // --- the datastore ------------------------------------------------------

  describe(): { type: string; location: string } {
    return { type: this.type, location: this.#path };
  }

  capabilities(): Capabilities {
    return {
      // Every conditional write is one transaction: a true compare-and-swap.
      scopedSync: true,
      atomicCommit: true,
      // SQLite has no clock of its own: lock expiry goes by the local clock.
      serverTime: false,
      rangedReads: true,
      maxConcurrency: 4,
    };
  }

  async open(opts: CallOptions = {}): Promise<void> {
    this.#aborted(opts.signal);
    if (!(await exists(this.#path))) {
      throw new NotFoundError(
        `The SQLite datastore ${this.#path} does not exist: run "modelsync init" with it, or ` +
          `fix "config.path" in modelsync.yaml.`,
      );
    }
    const rows = await this.#run(
      opts.signal,
      () => this.#sql("SELECT name FROM sqlite_master WHERE type = 'table'").all(),
    );
    const names = new Set(rows.map((r) => String(r.name)));
    if (!TABLES.every((t) => names.has(t))) {
      throw new NotFoundError(
        `The SQLite database ${this.#path} is not a modelsync datastore (it has no ` +
          `${TABLES.filter((t) => !names.has(t)).join(", ")} table): run "modelsync init" with ` +
          `it, or point "config.path" at the right file.`,
      );
    }
    // Chunks of uploads a killed process left behind; best effort (a
    // read-only database keeps them).
    await this.#write(opts.signal, () => {
      const stale = this.#sql("SELECT upload FROM uploads WHERE started_ms < ?")
        .all(Date.now() - STALE_UPLOAD_MS);
      for (const r of stale) this.#dropUpload(String(r.upload));
    }).catch(() => {});
  }

  async init(opts: CallOptions = {}): Promise<void> {
    this.#aborted(opts.signal);
    await Deno.mkdir(dirname(this.#path), { recursive: true });
    await this.#run(opts.signal, () => {
      // WAL: readers never wait for the writer; the mode is stored in the file.
      this.#connect().exec("PRAGMA journal_mode = WAL");
      this.#connect().exec(SCHEMA);
    });
    await this.open(opts);
  }

  close(): Promise<void> {
    this.#statements.clear();
    this.#db?.close();
    this.#db = undefined;
    return Promise.resolve();
  }

  // --- helpers ------------------------------------------------------------

  #connect(): DatabaseSync {
    if (this.#db !== undefined) return this.#db;
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(this.#path);
      db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      // Every committed transaction is on disk before the call returns.
      db.exec("PRAGMA synchronous = FULL");
    } catch (err) {
      throw this.#fail(err, "open");
    }
    this.#db = db;
    return db;
  }

  /** A prepared statement, cached per connection. */
  #sql(sql: string): StatementSync {
    let st = this.#statements.get(sql);
    if (st === undefined) {
      st = this.#connect().prepare(sql);
      this.#statements.set(sql, st);
    }
    return st;
  }

  #insertChunk(upload: string, seq: number, bytes: Uint8Array): void {
    this.#sql("INSERT INTO chunks (upload, seq, bytes) VALUES (?, ?, ?)").run(upload, seq, bytes);
  }

  #dropUpload(upload: string): void {
    this.#sql("DELETE FROM chunks WHERE upload = ?").run(upload);
    this.#sql("DELETE FROM uploads WHERE upload = ?").run(upload);
  }

  #page<T>(items: T[], last: string | undefined): Page<T> {
    return items.length < this.#pageSize || last === undefined
      ? { items }
      : { items, cursor: last };
  }

  /** Runs `fn` in one `BEGIN IMMEDIATE` transaction (retried while another process writes). */
  #write<T>(signal: AbortSignal | undefined, fn: () => T): Promise<T> {
    return this.#run(signal, () => {
      const db = this.#connect();
      db.exec("BEGIN IMMEDIATE");
      try {
        const result = fn();
        db.exec("COMMIT");
        return result;
      } catch (err) {
        if (db.isTransaction) db.exec("ROLLBACK");
        throw err;
      }
    });
  }

  /**
   * Runs a synchronous database step. While another process holds the
   * database lock (SQLITE_BUSY), waits with backoff, asynchronously, until
   * `signal` aborts (or 30 s without one). Other SQLite errors are mapped.
   */
  async #run<T>(signal: AbortSignal | undefined, fn: () => T): Promise<T> {
    const giveUp = Date.now() + BUSY_BUDGET_MS;
    for (let wait = 2;; wait = Math.min(wait * 2, 100)) {
      this.#aborted(signal);
      try {
        return fn();
      } catch (err) {
        if (!isBusy(err)) throw this.#fail(err, "use");
        if (signal === undefined && Date.now() > giveUp) {
          throw new DatastoreError(
            `The SQLite datastore ${this.#path} stayed locked by another process for ` +
              `${BUSY_BUDGET_MS / 1000} s. Retry.`,
            { retryable: true, cause: err },
          );
        }
      }
      await sleep(wait + Math.random() * wait, signal);
    }
  }

  #aborted(signal: AbortSignal | undefined): void {
    signal?.throwIfAborted();
  }

  #fail(err: unknown, what: string): Error {
    if (!(err instanceof Error) || (err as { code?: string }).code !== "ERR_SQLITE_ERROR") {
      return err as Error;
    }
    if (/not a database|malformed/i.test(err.message)) {
      return new UsageError(
        `Cannot ${what} ${this.#path}: it is not a SQLite database (${err.message}). ` +
          `Point "config.path" in modelsync.yaml at the datastore's database file.`,
        { cause: err },
      );
    }
    return new DatastoreError(
      `Cannot ${what} the SQLite datastore ${this.#path}: ${err.message}.`,
      { cause: err },
    );
  }
}

/** SQLITE_BUSY or SQLITE_LOCKED: another connection holds the lock. */
function isBusy(err: unknown): boolean {
  const e = err as { errcode?: number; message?: string } | null;
  const primary = typeof e?.errcode === "number" ? e.errcode & 0xff : undefined;
  return primary === 5 || primary === 6 || /database (table )?is locked/i.test(e?.message ?? "");
}

/** The content of `source` in pieces of at most `size` bytes; honours `signal` between them. */
async function* chunksOf(
  source: BlobSource,
  size: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<Uint8Array> {
  if (source.kind === "bytes") {
    for (let i = 0; i < source.bytes.length; i += size) {
      signal?.throwIfAborted();
      yield source.bytes.subarray(i, i + size);
    }
    return;
  }
  let file: Deno.FsFile;
  try {
    file = await Deno.open(source.path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new ContentChangedError(
        `File ${source.path} disappeared while being pushed. Rerun once it settles.`,
        { cause: err },
      );
    }
    throw err;
  }
  try {
    for (;;) {
      signal?.throwIfAborted();
      const buf = new Uint8Array(size);
      let filled = 0;
      while (filled < size) {
        const n = await file.read(buf.subarray(filled));
        if (n === null) break;
        filled += n;
      }
      if (filled > 0) yield buf.subarray(0, filled);
      if (filled < size) return;
    }
  } finally {
    file.close();
  }
}

function describeSource(source: BlobSource): string {
  return source.kind === "file" ? `file ${source.path}` : "the bytes given";
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", stop);
    };
    const stop = () => {
      done();
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      done();
      resolve();
    }, ms);
    signal?.addEventListener("abort", stop, { once: true });
  });
}
