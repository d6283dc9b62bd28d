/**
 * A third-party modelsync provider module: a datastore in one SQLite
 * database file (Deno's built-in `node:sqlite`). Load it from
 * `modelsync.yaml`:
 *
 * ```yaml
 * datastore:
 *   type: module
 *   module: ./examples/sqlite-provider/mod.ts   # relative to the repository
 *   config:
 *     path: /srv/models/store.db                # relative paths: to the repository
 * ```
 *
 * It imports modelsync only through the package's `./provider` export, as
 * an outside author would.
 *
 * @example
 * ```ts ignore
 * import sqliteProvider from "@modelsync/sqlite-provider";
 * const p = await sqliteProvider.create({ path: "/tmp/store.db", pageSize: 1000 }, context);
 * await p.init();
 * ```
 * @module
 */
import { resolve } from "node:path";
import { z } from "zod";
import type { ProviderModule } from "@modelsync/cli/provider";
import { SqliteProvider } from "./provider.ts";

/** The `config:` block of the datastore. */
export interface SqliteConfig {
  /** The database file: absolute, or relative to the repository. */
  path: string;
  /** Rows per page of a listing (default 1000). */
  pageSize: number;
}

/** Validates the `config:` block; unknown keys are errors. */
export const sqliteConfigSchema: z.ZodType<SqliteConfig> = z.object({
  path: z.string().min(1, "give the database file, e.g. path: ./store.db"),
  pageSize: z.number().int().min(1).max(100_000).default(1000),
}).strict();

/** The provider module modelsync loads (`type: module`). */
export const sqliteProvider: ProviderModule<SqliteConfig> = {
  type: "sqlite",
  configSchema: sqliteConfigSchema,
  create(config, context) {
    return new SqliteProvider({
      path: resolve(context.baseDir, config.path),
      pageSize: config.pageSize,
    });
  },
};

export default sqliteProvider;
export { CHUNK_BYTES, SqliteProvider } from "./provider.ts";
