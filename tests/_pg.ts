/**
 * Helpers for the end-to-end tests on a PostgreSQL datastore: a
 * {@linkcode Sandbox} whose repositories use a fresh schema of the local
 * PostgreSQL 15 test server (started with `eval "$(scripts/services.sh start)"`),
 * directly, through PgBouncer in transaction pooling mode, or through a
 * {@linkcode PgProxy} the test can count statements on and cut.
 *
 * @example
 * ```ts ignore
 * import { PgSandbox, pgTestOptions } from "./_pg.ts";
 * Deno.test({ name: "push", ...pgTestOptions() }, async () => {
 *   await using pg = await PgSandbox.create("push");
 *   const repo = await pg.sb.repo("a");
 *   await repo.write("models/vpc/m1/a.txt", "hello");
 *   await repo.run(["push"]);
 * });
 * ```
 * @module
 */
import { join } from "node:path";
import {
  adminSql,
  dropSchema,
  freshSchema,
  PASSWORD_GROUP,
  PG_URL,
  PGBOUNCER_URL,
  pgbouncerTestOptions,
  pgTestOptions,
  specOf,
} from "../src/providers/postgres/_test_server.ts";
import { Sandbox } from "./_helpers.ts";
import { PgProxy } from "./_pg_proxy.ts";

export { adminSql, PASSWORD_GROUP, PG_URL, PGBOUNCER_URL, pgbouncerTestOptions, pgTestOptions };

/** How to build a {@linkcode PgSandbox}. */
export interface PgSandboxOptions {
  /** Reach the server through PgBouncer (transaction pooling). */
  pgbouncer?: boolean;
  /** Put a {@linkcode PgProxy} between the CLI and the server (or PgBouncer). */
  proxy?: boolean;
  /** Extra environment for every CLI run. */
  env?: Record<string, string>;
}

/** libpq's variables, blanked so that a developer's own never reach a test. */
const HERMETIC_PG_ENV = ["PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSSLMODE"];

/** A sandbox whose datastore is a fresh schema on the PostgreSQL test server. */
export class PgSandbox {
  private constructor(
    readonly sb: Sandbox,
    readonly schema: string,
    /** The URL the CLI uses (without the schema). */
    readonly url: string,
    readonly proxy: PgProxy | null,
  ) {}

  /** A fresh schema (named after `hint`; created by the first `init`) and a sandbox using it. */
  static async create(hint: string, opts: PgSandboxOptions = {}): Promise<PgSandbox> {
    const upstream = opts.pgbouncer ? PGBOUNCER_URL : PG_URL;
    if (upstream === null) throw new Error("MODELSYNC_TEST_PG_URL / _PGBOUNCER_URL is not set");
    const proxy = opts.proxy ? await PgProxy.start(upstream) : null;
    const url = proxy?.url ?? upstream;
    const schema = freshSchema(hint);
    const sb = await Sandbox.create({ datastoreSpec: specOf(url, schema) });
    Object.assign(sb.env, {
      ...Object.fromEntries(HERMETIC_PG_ENV.map((k) => [k, ""])),
      PGPASSFILE: join(sb.root, "no-pgpass"),
      ...opts.env,
    });
    return new PgSandbox(sb, schema, url, proxy);
  }

  /** Number of rows of one of the schema's tables, read directly (not through the proxy). */
  async count(table: "records" | "blobs" | "blob_chunks"): Promise<number> {
    const rows = await adminSql().unsafe(
      `SELECT count(*)::int AS n FROM "${this.schema}".${table}`,
    );
    return rows[0].n as number;
  }

  async dispose(): Promise<void> {
    await this.sb.dispose();
    await this.proxy?.close();
    await dropSchema(this.schema);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
