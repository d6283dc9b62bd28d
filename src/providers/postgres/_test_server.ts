/**
 * The local PostgreSQL 15 test server and PgBouncer in front of it, shared
 * by the PostgreSQL provider's tests and the end-to-end tests. Both are
 * started with `eval "$(scripts/services.sh start)"`, which exports
 * `MODELSYNC_TEST_PG_URL` and `MODELSYNC_TEST_PGBOUNCER_URL`.
 *
 * When a variable is absent, tests that need it are ignored with one
 * message saying how to start it, unless `MODELSYNC_TEST_REQUIRE_SERVICES=1`
 * (CI), where they fail instead.
 *
 * @example
 * ```ts ignore
 * import { freshSchema, PG_URL, pgTestOptions } from "./_test_server.ts";
 * Deno.test({ name: "round trip", ...pgTestOptions() }, async () => {
 *   const schema = await freshSchema("rt");
 *   console.log(`${PG_URL}?schema=${schema}`);
 * });
 * ```
 * @module
 */
import postgres from "postgres";

const PG_VAR = "MODELSYNC_TEST_PG_URL";
const PGBOUNCER_VAR = "MODELSYNC_TEST_PGBOUNCER_URL";
const START_HINT = 'eval "$(scripts/services.sh start)"';

/** The test server's URL (trust auth, superuser), or null when not set. */
export const PG_URL: string | null = Deno.env.get(PG_VAR)?.trim() || null;
/** The same database through PgBouncer in transaction pooling mode, or null. */
export const PGBOUNCER_URL: string | null = Deno.env.get(PGBOUNCER_VAR)?.trim() || null;

/** Roles in this group log in with a password (scripts/services.sh's pg_hba.conf). */
export const PASSWORD_GROUP = "modelsync_password_auth";

const hinted = new Set<string>();

function options(name: string, value: string | null): { ignore: boolean } {
  if (value !== null) return { ignore: false };
  if (Deno.env.get("MODELSYNC_TEST_REQUIRE_SERVICES") === "1") {
    throw new Error(
      `${name} is not set but MODELSYNC_TEST_REQUIRE_SERVICES=1: start PostgreSQL and ` +
        `PgBouncer with ${START_HINT}.`,
    );
  }
  if (!hinted.has(name)) {
    hinted.add(name);
    console.error(`PostgreSQL tests ignored: ${name} is not set; start it with ${START_HINT}`);
  }
  return { ignore: true };
}

/** Options for a `Deno.test` that needs PostgreSQL (see the module doc). */
export function pgTestOptions(): { ignore: boolean } {
  return options(PG_VAR, PG_URL);
}

/** Options for a `Deno.test` that needs PgBouncer in front of PostgreSQL. */
export function pgbouncerTestOptions(): { ignore: boolean } {
  const pg = pgTestOptions();
  return pg.ignore ? pg : options(PGBOUNCER_VAR, PGBOUNCER_URL);
}

let admin: postgres.Sql | undefined;

/** A client of the test server as its superuser (for setting up and inspecting tests). */
export function adminSql(): postgres.Sql {
  if (PG_URL === null) throw new Error(`${PG_VAR} is not set: run ${START_HINT}`);
  admin ??= postgres(PG_URL, { max: 2, prepare: false, onnotice: () => {}, idle_timeout: 5 });
  return admin;
}

/** Closes the admin client (call at the end of a test file that used it). */
export async function closeAdmin(): Promise<void> {
  const a = admin;
  admin = undefined;
  await a?.end({ timeout: 1 });
}

let counter = 0;

/**
 * A unique schema name for a test (not created: `init` creates it).
 * `hint` (lowercased, non-alphanumerics dropped) makes it recognisable.
 */
export function freshSchema(hint: string): string {
  const h = hint.toLowerCase().replace(/[^a-z0-9]/g, "").slice(0, 20) || "t";
  const rand = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16))
    .join("");
  return `ms_${h}_${Deno.pid}_${counter++}_${rand}`.slice(0, 63);
}

/** Drops a test's schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  await adminSql().unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** `url` with `?schema=S` (the spec form of a datastore). */
export function specOf(url: string, schema: string): string {
  return `${url}${url.includes("?") ? "&" : "?"}schema=${schema}`;
}
