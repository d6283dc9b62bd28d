/**
 * The shared end-to-end suite (tests/_provider_suite.ts) on a PostgreSQL
 * datastore: a fresh schema of the local PostgreSQL 15 test server, reached
 * directly and through PgBouncer in transaction pooling mode.
 */
import { pgbouncerTestOptions, PgSandbox, pgTestOptions } from "./_pg.ts";
import { providerSuite } from "./_provider_suite.ts";

providerSuite({
  name: "PostgreSQL",
  testOptions: pgTestOptions,
  async create(hint) {
    const pg = await PgSandbox.create(hint);
    return { sb: pg.sb, dispose: () => pg.dispose() };
  },
});

providerSuite({
  name: "PostgreSQL through PgBouncer",
  testOptions: pgbouncerTestOptions,
  async create(hint) {
    const pg = await PgSandbox.create(hint, { pgbouncer: true });
    return { sb: pg.sb, dispose: () => pg.dispose() };
  },
});
