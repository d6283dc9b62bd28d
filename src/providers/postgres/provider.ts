/**
 * The PostgreSQL provider: a datastore in one schema of a database. Blobs
 * are `./blobs.ts`; a record is a row of `records` (key, body, version,
 * modified_at), changed only by a conditional `INSERT … ON CONFLICT DO
 * NOTHING`, `UPDATE … WHERE version = $v` or `DELETE … WHERE version = $v`
 * whose row count is the answer. Versions come from one sequence, so they
 * never repeat for a key; times are the server's `clock_timestamp()`
 * (design/postgres.md, "Records").
 *
 * @example
 * ```ts ignore
 * import { PostgresProvider } from "./provider.ts";
 * const p = new PostgresProvider({ url: "postgres://app@db/models", schema: "modelsync" }, {
 *   callTimeoutMs: 30_000, host: "h", pid: 1, baseDir: "/",
 * });
 * console.log(p.describe()); // { type: "postgres", location: "postgres://app@db:5432/models (schema modelsync)" }
 * ```
 * @module
 */
import type * as C from "../../provider/contract.ts";
import { PgBlobs } from "./blobs.ts";
import { PgPool, type Row } from "./client.ts";
import { type PostgresConfig, resolvePostgresConfig } from "./config.ts";
import { checkSchema, migrate } from "./migrations.ts";

/** Options for tests; none is a user setting. */
export interface PostgresProviderOptions {
  /** Environment for libpq's variables (default `Deno.env`). */
  env?: Record<string, string | undefined>;
  /** Keys per listing page (default 1,000). */
  pageSize?: number;
}

const SEGMENT = String.raw`(?!\.\.?(?:/|$))[A-Za-z0-9._@-]+`;
const RECORD_KEY = new RegExp(`^${SEGMENT}(?:/${SEGMENT})*$`);
/** A version token: a value of the sequence. */
const VERSION = /^[1-9][0-9]{0,18}$/;
/** Sorts after every character a key may hold (`z` is the last, byte order). */
const AFTER_KEYS = "~";
/** Suggested parallel transfers, and the pool size without `--jobs`. */
const MAX_CONCURRENCY = 8;
/** Connections beyond the parallel transfers: lease renewals, commits, listings. */
const SPARE_CONNECTIONS = 4;

/** A datastore in a schema of a PostgreSQL database. */
export class PostgresProvider extends PgBlobs implements C.Provider {
  readonly type = "postgres";
  readonly #pageSize: number;

  constructor(
    config: PostgresConfig,
    context: C.ProviderContext,
    opts: PostgresProviderOptions = {},
  ) {
    const jobs = context.jobs ?? MAX_CONCURRENCY;
    super(
      new PgPool(resolvePostgresConfig(config, opts.env), {
        callTimeoutMs: context.callTimeoutMs,
        max: Math.max(1, jobs) + SPARE_CONNECTIONS,
      }),
    );
    this.#pageSize = opts.pageSize ?? 1_000;
  }

  async getRecord(key: string, opts: C.CallOptions = {}): Promise<C.StoredRecord | null> {
    checkKey(key);
    const [rows] = await this.pg.batch(`read record ${key}`, (q) => [
      q(
        `SELECT body, version::text AS version,
           floor(extract(epoch FROM modified_at) * 1000)::float8 AS modified_ms,
           floor(extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now_ms
         FROM ${this.pg.schema}.records WHERE key = $1`,
        [key],
      ),
    ], opts);
    if (rows.length === 0) return null;
    const r = rows[0];
    const body = r.body as Uint8Array;
    return {
      bytes: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
      version: r.version as string,
      modifiedMs: r.modified_ms as number,
      storeNowMs: r.now_ms as number,
    };
  }

  async createRecord(
    key: string,
    bytes: Uint8Array,
    opts: C.CallOptions = {},
  ): Promise<string | null> {
    checkKey(key);
    return versionOf(
      await this.#write(`write record ${key}`, (s) =>
        [
          `INSERT INTO ${s}.records (key, body) VALUES ($1, $2)
           ON CONFLICT (key) DO NOTHING RETURNING version::text AS version`,
          [key, bytes],
        ] as const, opts),
    );
  }

  async replaceRecord(
    key: string,
    bytes: Uint8Array,
    version: string,
    opts: C.CallOptions = {},
  ): Promise<string | null> {
    checkKey(key);
    if (!VERSION.test(version)) return null;
    return versionOf(
      await this.#write(`write record ${key}`, (s) =>
        [
          `UPDATE ${s}.records
           SET body = $2, version = nextval('${s}.record_versions'), modified_at = clock_timestamp()
           WHERE key = $1 AND version = $3 RETURNING version::text AS version`,
          [key, bytes, version],
        ] as const, opts),
    );
  }

  async deleteRecord(key: string, version: string, opts: C.CallOptions = {}): Promise<boolean> {
    checkKey(key);
    if (!VERSION.test(version)) return false;
    const rows = await this.#write(`delete record ${key}`, (s) =>
      [
        `DELETE FROM ${s}.records WHERE key = $1 AND version = $2 RETURNING 1 AS deleted`,
        [key, version],
      ] as const, opts);
    return rows.length === 1;
  }

  /** One page of the records whose keys start with `prefix`, in byte order of keys. */
  async listRecords(prefix: string, opts: C.ListOptions = {}): Promise<C.Page<C.RecordListing>> {
    const after = opts.cursor !== undefined && opts.cursor > prefix ? opts.cursor : undefined;
    const [rows] = await this.pg.batch(`list ${prefix === "" ? "the datastore" : prefix}`, (q) => [
      q(
        `SELECT key, version::text AS version,
           floor(extract(epoch FROM modified_at) * 1000)::float8 AS modified_ms
         FROM ${this.pg.schema}.records
         WHERE key ${after === undefined ? ">=" : ">"} $1 AND key < $2 AND starts_with(key, $3)
         ORDER BY key LIMIT ${this.#pageSize}`,
        [after ?? prefix, prefix + AFTER_KEYS, prefix],
      ),
    ], opts);
    const items = rows.map((r) => ({
      key: r.key as string,
      version: r.version as string,
      modifiedMs: r.modified_ms as number,
    }));
    return items.length === this.#pageSize ? { items, cursor: items.at(-1)!.key } : { items };
  }

  describe(): { type: string; location: string } {
    return { type: this.type, location: this.pg.where };
  }

  capabilities(): C.Capabilities {
    return {
      scopedSync: true,
      atomicCommit: true,
      serverTime: true,
      clockResolutionMs: 1,
      rangedReads: true,
      maxConcurrency: MAX_CONCURRENCY,
    };
  }

  /** Checks the schema exists at this modelsync's version (one statement). */
  async open(opts: C.CallOptions = {}): Promise<void> {
    await checkSchema(this.pg, opts.signal);
  }

  /** Creates the schema and applies the missing migrations. */
  async init(opts: C.CallOptions = {}): Promise<void> {
    await migrate(this.pg, opts.signal);
  }

  close(): Promise<void> {
    return this.pg.close();
  }

  /** One conditional write; its rows are the answer (none: the condition failed). */
  async #write(
    what: string,
    statement: (schema: string) => readonly [string, unknown[]],
    opts: C.CallOptions,
  ): Promise<Row[]> {
    const [text, params] = statement(this.pg.schema);
    const [rows] = await this.pg.batch(what, (q) => [q(text, params)], opts);
    return rows;
  }
}

function checkKey(key: string): void {
  if (!RECORD_KEY.test(key)) throw new Error(`Invalid record key ${JSON.stringify(key)}.`);
}

function versionOf(rows: Row[]): string | null {
  return rows.length === 1 ? (rows[0].version as string) : null;
}
