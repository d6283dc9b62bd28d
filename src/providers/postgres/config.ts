/**
 * Configuration of the PostgreSQL provider: `postgres://…` /
 * `postgresql://…` as a datastore spec, or `type: postgres` with `url` and
 * `schema` in `modelsync.yaml`, resolved against libpq's environment
 * (design/postgres.md, "Configuration"). A password comes from the URL only
 * when the user put it there, else from `PGPASSWORD` or the password file
 * (`PGPASSFILE`, default `~/.pgpass`); it is never part of a description.
 *
 * @example
 * ```ts
 * import { parsePostgresSpec, postgresConfigSchema, resolvePostgresConfig } from "./config.ts";
 * const config = postgresConfigSchema.parse(parsePostgresSpec("postgres://app@db:6432/models?schema=team"));
 * const r = resolvePostgresConfig(config, {});
 * console.log(r.host, r.port, r.database, r.user, config.schema); // db 6432 models app team
 * ```
 * @module
 */
import { homedir, userInfo } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { UsageError } from "../../errors.ts";
import { redactSpec } from "../../repo/datastore_spec.ts";

/** Configuration of the PostgreSQL provider, as validated. */
export interface PostgresConfig {
  /** `postgres://[user[:password]@][host][:port][/database][?sslmode=…]`. */
  url: string;
  /** The schema holding modelsync's tables (default `modelsync`). */
  schema: string;
}

/** libpq's `sslmode` values. */
export const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];
type SslMode = typeof SSL_MODES[number];

/** The connection as the client uses it. The password is looked up when connecting. */
export interface ResolvedPostgresConfig {
  host: string;
  /** A Unix socket directory when `host` starts with `/`. */
  socketDir?: string;
  port: number;
  database: string;
  user: string;
  /** Where the password comes from (never the password). */
  passwordFrom: "url" | "PGPASSWORD" | "password file" | "none";
  /** Returns the password (lazily: the password file is read only when connecting). */
  password: () => string | undefined;
  sslmode: SslMode;
  applicationName: string;
  connectTimeoutS?: number;
  schema: string;
}

/** Query keys a datastore URL may carry; the rest are refused like unknown YAML keys. */
const URL_KEYS = ["sslmode", "application_name", "connect_timeout"];
const SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/;
const SCHEMA_MESSAGE = "not a plain schema name (lowercase letters, digits and _, at most 63, " +
  "not starting with a digit)";
const DEFAULT_SCHEMA = "modelsync";

/** Why a datastore URL is not usable, or undefined. */
function urlProblem(url: string): string | undefined {
  if (!/^postgres(ql)?:\/\//i.test(url)) return "not a postgres:// or postgresql:// URL";
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return "not a valid URL (percent-encode special characters in the user name or password)";
  }
  if (u.hash !== "") return "it has a #fragment, which PostgreSQL has no use for";
  if (u.hostname.includes(",")) return "it names several hosts; name one";
  const path = decodeURIComponent(u.pathname.replace(/^\//, ""));
  if (path.includes("/")) return "the database name cannot contain /";
  const seen = new Set<string>();
  for (const [k, v] of u.searchParams) {
    if (seen.has(k)) return `it sets "${k}" twice`;
    seen.add(k);
    if (k === "password" || k === "user") {
      return `it sets "${k}" as a query key; put the user in the URL (postgres://USER@host/db) ` +
        `and the password in PGPASSWORD or ~/.pgpass`;
    }
    if (!URL_KEYS.includes(k)) {
      return `unknown query key "${k}" (use ${URL_KEYS.join(", ")}, or schema in the spec)`;
    }
    if (k === "sslmode" && !SSL_MODES.includes(v)) {
      return `sslmode must be one of ${SSL_MODES.join(", ")}`;
    }
    if (k === "connect_timeout" && !/^[1-9][0-9]{0,4}$/.test(v)) {
      return "connect_timeout must be a whole number of seconds";
    }
  }
  return undefined;
}

/** Validates the `datastore:` block (without `type`); unknown keys are refused. */
export const postgresConfigSchema: z.ZodType<PostgresConfig> = z.object({
  url: z.string().min(1).superRefine((url, ctx) => {
    const problem = urlProblem(url);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  }),
  schema: z.string().regex(SCHEMA, { message: SCHEMA_MESSAGE }).default(DEFAULT_SCHEMA),
}).strict() as unknown as z.ZodType<PostgresConfig>;

/**
 * `postgres://…?schema=S` (or `postgresql://`) as config keys: the URL
 * without `schema`, which becomes its own key. Other query keys are checked
 * by the schema.
 */
export function parsePostgresSpec(spec: string): Record<string, unknown> {
  const text = spec.trim();
  const bad = (why: string) =>
    new UsageError(
      `Invalid datastore ${JSON.stringify(redactSpec(text))}: ${why}. Use ` +
        `postgres://[USER@]HOST[:PORT]/DATABASE[?schema=NAME&sslmode=MODE].`,
    );
  if (!/^postgres(ql)?:\/\//i.test(text)) throw bad("it is not a postgres:// URL");
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw bad("it is not a valid URL (percent-encode special characters in the password)");
  }
  const schemas = u.searchParams.getAll("schema");
  if (schemas.length > 1) throw bad(`it sets "schema" twice`);
  u.searchParams.delete("schema");
  const url = u.search === "" ? u.href.replace(/\?$/, "") : u.href;
  const problem = urlProblem(url);
  if (problem !== undefined) throw bad(problem);
  return schemas.length === 1 ? { url, schema: schemas[0] } : { url };
}

/**
 * Applies libpq's environment to the URL: host (`PGHOST`, else
 * `localhost`), port (`PGPORT`, else 5432), database (`PGDATABASE`, else the
 * user), user (`PGUSER`, else the login name), password (the URL's, else
 * `PGPASSWORD`, else the password file), `sslmode` (`PGSSLMODE`, else
 * `prefer`), `application_name` (`PGAPPNAME`, else `modelsync`),
 * `connect_timeout` (`PGCONNECT_TIMEOUT`).
 */
export function resolvePostgresConfig(
  config: PostgresConfig,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): ResolvedPostgresConfig {
  const u = new URL(config.url);
  const fromEnv = (name: string) => env[name]?.trim() || undefined;
  const hostText = decodeURIComponent(u.hostname).replace(/^\[(.*)\]$/, "$1") ||
    fromEnv("PGHOST") || "localhost";
  const port = Number(u.port || fromEnv("PGPORT") || 5432);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`Invalid PGPORT ${JSON.stringify(fromEnv("PGPORT"))}: not a port number.`);
  }
  const user = decodeURIComponent(u.username) || fromEnv("PGUSER") || loginName();
  const database = decodeURIComponent(u.pathname.replace(/^\//, "")) || fromEnv("PGDATABASE") ||
    user;
  const urlPassword = u.password === "" ? undefined : decodeURIComponent(u.password);
  const envPassword = env.PGPASSWORD === "" ? undefined : env.PGPASSWORD;
  const passfile = fromEnv("PGPASSFILE") ?? join(homedir(), ".pgpass");
  const host = hostText.startsWith("/") ? "localhost" : hostText;
  const sslmode = (u.searchParams.get("sslmode") ?? fromEnv("PGSSLMODE") ?? "prefer") as SslMode;
  if (!SSL_MODES.includes(sslmode)) {
    throw new UsageError(
      `Invalid PGSSLMODE ${JSON.stringify(sslmode)}: use one of ${SSL_MODES.join(", ")}.`,
    );
  }
  const timeout = u.searchParams.get("connect_timeout") ?? fromEnv("PGCONNECT_TIMEOUT");
  let passwordFrom: ResolvedPostgresConfig["passwordFrom"] = "none";
  if (urlPassword !== undefined) passwordFrom = "url";
  else if (envPassword !== undefined) passwordFrom = "PGPASSWORD";
  else passwordFrom = "password file";
  return {
    host,
    ...(hostText.startsWith("/") ? { socketDir: hostText } : {}),
    port,
    database,
    user,
    passwordFrom,
    password: () =>
      urlPassword ?? envPassword ??
        passwordFromFile(passfile, { host: hostText, port, database, user }),
    sslmode,
    applicationName: u.searchParams.get("application_name") ?? fromEnv("PGAPPNAME") ?? "modelsync",
    ...(timeout !== undefined && Number(timeout) > 0 ? { connectTimeoutS: Number(timeout) } : {}),
    schema: config.schema,
  };
}

function loginName(): string {
  try {
    return userInfo().username;
  } catch {
    return "postgres";
  }
}

/**
 * The password of the first matching line of a libpq password file
 * (`host:port:database:user:password`, `*` matches anything, `\:` and `\\`
 * escape), or undefined. As libpq, a file others may read is ignored.
 */
export function passwordFromFile(
  path: string,
  want: { host: string; port: number; database: string; user: string },
): string | undefined {
  let text: string;
  try {
    const st = Deno.statSync(path);
    if (!st.isFile || (st.mode !== null && (st.mode & 0o077) !== 0)) return undefined;
    text = Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
  const host = want.host.startsWith("/") ? "localhost" : want.host;
  const values = [host, String(want.port), want.database, want.user];
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const fields = splitPassLine(line);
    if (fields.length < 5) continue;
    if (values.every((v, i) => fields[i] === "*" || fields[i] === v)) return fields[4];
  }
  return undefined;
}

function splitPassLine(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === "\\" && i + 1 < line.length) cur += line[++i];
    else if (c === ":" && out.length < 4) {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** `postgres://user@host:port/database (schema S)`: no password, no query. */
export function describeLocation(r: ResolvedPostgresConfig): string {
  const host = r.socketDir ?? r.host;
  const at = host.includes(":") ? `[${host}]` : host;
  return `postgres://${encodeURIComponent(r.user)}@${at}:${r.port}/${
    encodeURIComponent(r.database)
  } (schema ${r.schema})`;
}
