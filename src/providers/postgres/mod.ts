/**
 * The `postgres` provider module (design/postgres.md). Loaded by the
 * registry with `import()`, so the PostgreSQL client loads only when a
 * postgres datastore is used.
 *
 * @module
 */
import type { ProviderModule } from "../../provider/contract.ts";
import { parsePostgresSpec, type PostgresConfig, postgresConfigSchema } from "./config.ts";
import { PostgresProvider } from "./provider.ts";

/** The postgres provider module. */
export const postgresProvider: ProviderModule<PostgresConfig> = {
  type: "postgres",
  configSchema: postgresConfigSchema,
  parseSpec: (spec) => parsePostgresSpec(spec),
  create: (config, context) => new PostgresProvider(config, context),
};

export { type PostgresConfig, postgresConfigSchema } from "./config.ts";
export { PostgresProvider } from "./provider.ts";
