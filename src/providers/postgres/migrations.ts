/**
 * The PostgreSQL provider's tables, created by versioned migrations
 * (design/postgres.md, "Tables"). `init` applies the missing ones in one
 * transaction; `open` checks the schema is at exactly this version, so a
 * schema that is behind (run `modelsync init`) or ahead (upgrade modelsync)
 * gets a clear error before anything is read.
 *
 * @module
 */
import { NotFoundError, UsageError } from "../../errors.ts";
import { errorCode, type PgPool } from "./client.ts";

/** One migration: its number, what it does, and its statements for schema `s` (quoted). */
interface Migration {
  version: number;
  description: string;
  statements: (s: string) => string[];
}

/** Bytes per stored chunk of a blob. */
export const CHUNK_BYTES = 1024 * 1024;

const MIGRATIONS: Migration[] = [{
  version: 1,
  description: "records, blobs and their chunks",
  statements: (s) => [
    `CREATE SEQUENCE ${s}.record_versions`,
    `CREATE TABLE ${s}.records (
      key text COLLATE "C" PRIMARY KEY,
      body bytea NOT NULL,
      version bigint NOT NULL DEFAULT nextval('${s}.record_versions'),
      modified_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )`,
    `CREATE TABLE ${s}.blobs (
      hash text COLLATE "C" PRIMARY KEY,
      size bigint NOT NULL,
      chunk_size integer NOT NULL,
      stored_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )`,
    `CREATE TABLE ${s}.blob_chunks (
      hash text COLLATE "C" NOT NULL REFERENCES ${s}.blobs (hash) ON DELETE CASCADE,
      seq integer NOT NULL,
      data bytea NOT NULL,
      PRIMARY KEY (hash, seq)
    )`,
    // Model files are mostly compressed already: no compression attempts.
    `ALTER TABLE ${s}.blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL`,
  ],
}];

/** The schema version this modelsync reads and writes. */
export const SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

/** What `open` found: the schema's version, or why it cannot be used. */
export async function checkSchema(pool: PgPool, signal?: AbortSignal): Promise<void> {
  const s = pool.schema;
  let version: number;
  try {
    const [rows] = await pool.batch("read the schema version", (q) => [
      q(`SELECT coalesce(max(version), 0)::int AS v FROM ${s}.migrations`),
    ], { signal });
    version = rows[0].v as number;
  } catch (err) {
    const code = errorCode((err as Error).cause);
    if (code === "42P01" || code === "3F000") {
      throw new NotFoundError(
        `The postgres datastore ${pool.where} is not initialised (no schema ` +
          `${pool.config.schema} with modelsync's tables): run "modelsync init" with it, or ` +
          `check the schema named.`,
        { cause: err },
      );
    }
    throw err;
  }
  if (version < SCHEMA_VERSION) {
    throw new UsageError(
      `The postgres datastore ${pool.where} has schema version ${version}, this modelsync needs ` +
        `${SCHEMA_VERSION}: run "modelsync init" to migrate it.`,
    );
  }
  if (version > SCHEMA_VERSION) {
    throw new UsageError(
      `The postgres datastore ${pool.where} has schema version ${version}, newer than this ` +
        `modelsync knows (${SCHEMA_VERSION}): upgrade modelsync.`,
    );
  }
}

/**
 * Creates the schema and applies the missing migrations in one
 * transaction. Concurrent inits wait for each other on a transaction-scoped
 * advisory lock (released by COMMIT, so no session state).
 */
export async function migrate(pool: PgPool, signal?: AbortSignal): Promise<void> {
  const s = pool.schema;
  await pool.transaction("create the schema", async (q) => {
    await q("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`modelsync:${s}`]);
    await q(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await q(`CREATE TABLE IF NOT EXISTS ${s}.migrations (
      version integer PRIMARY KEY,
      description text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )`);
    const rows = await q(`SELECT coalesce(max(version), 0)::int AS v FROM ${s}.migrations`);
    const current = rows[0].v as number;
    if (current > SCHEMA_VERSION) {
      throw new UsageError(
        `The postgres datastore ${pool.where} has schema version ${current}, newer than this ` +
          `modelsync knows (${SCHEMA_VERSION}): upgrade modelsync.`,
      );
    }
    for (const m of MIGRATIONS.filter((m) => m.version > current)) {
      for (const statement of m.statements(s)) await q(statement);
      await q(`INSERT INTO ${s}.migrations (version, description) VALUES ($1, $2)`, [
        m.version,
        m.description,
      ]);
    }
  }, { signal });
}
