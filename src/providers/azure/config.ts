/**
 * Configuration of the Azure Blob Storage provider: the `datastore:` block
 * or the keys of `azure://container/prefix?…`, resolved against Azure's
 * standard environment (design/azure.md, "Configuration"). Credentials are
 * never configuration: they come from `AZURE_STORAGE_CONNECTION_STRING`, or
 * `AZURE_STORAGE_ACCOUNT` with `AZURE_STORAGE_KEY` or
 * `AZURE_STORAGE_SAS_TOKEN`.
 *
 * @example
 * ```ts
 * import { azureConfigSchema, parseAzureSpec, resolveAzureConfig } from "./config.ts";
 * const config = azureConfigSchema.parse(parseAzureSpec("azure://models/team"));
 * const r = resolveAzureConfig(config, {
 *   AZURE_STORAGE_ACCOUNT: "acme",
 *   AZURE_STORAGE_SAS_TOKEN: "?sv=2024-01-01&sig=x",
 * });
 * console.log(r.endpoint, r.prefix); // https://acme.blob.core.windows.net team
 * ```
 * @module
 */
import { z } from "zod";
import { UsageError } from "../../errors.ts";
import { redactSpec } from "../../repo/datastore_spec.ts";

/** Configuration of the Azure provider, as validated. */
export interface AzureConfig {
  /** Blob container name. */
  container: string;
  /** Name prefix inside the container, without leading or trailing slashes ("" = its root). */
  prefix: string;
  /** Storage account name; default from the environment. */
  account?: string;
  /** The account's blob endpoint URL (Azurite, a sovereign cloud); default from the account. */
  endpoint?: string;
}

/** How requests are signed: the account's shared key, a SAS token, or neither. */
export type AzureCredential =
  | { kind: "key"; key: string }
  | { kind: "sas"; token: string }
  | { kind: "none" };

/** The configuration with the environment applied: what the client uses. */
export interface ResolvedAzureConfig {
  container: string;
  prefix: string;
  account: string;
  /** The account's blob endpoint, without a trailing slash, query or user info. */
  endpoint: string;
  /** True when the endpoint is the account's default one (`https://ACCOUNT.blob.…`). */
  defaultEndpoint: boolean;
  credential: AzureCredential;
  /** Where the credentials came from, for messages (variable names, never values). */
  source: string;
}

/** The environment variables credentials come from, for remedies. */
export const AZURE_ENV_HINT = "AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with " +
  "AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN";

/** Keys that would hold credentials: refused with a remedy, never read. */
export const CREDENTIAL_KEYS: readonly string[] =
  ("key accountKey account_key accessKey sas sasToken sas_token token sig connectionString " +
    "connection_string credentials password secret").split(" ");

const CREDENTIALS_REMEDY = "credentials are never read from modelsync.yaml or the datastore " +
  `spec; remove it and use the Azure environment (${AZURE_ENV_HINT})`;

/** The remedy for a URL holding credentials, one clause; `what` names the URL. */
export function credentialsInUrlRemedy(what: string): string {
  return `${what} holds a user name, password or query (a SAS token), but credentials come ` +
    `from the Azure environment (${AZURE_ENV_HINT}), never from a URL: remove them from it`;
}

/** True when a URL carries user info or a query (where a SAS token would sit). */
export function urlHasCredentials(url: string): boolean {
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    return url.includes("@") || url.includes("?");
  }
  return u.username !== "" || u.password !== "" || u.search !== "";
}

const refused = z.unknown().refine((v) => v === undefined, { message: CREDENTIALS_REMEDY })
  .optional();

/** Azure's rule for container names: 3-63 of a-z 0-9 -, no leading, trailing or double dash. */
export const CONTAINER_NAME = /^(?=.{3,63}$)[a-z0-9]+(?:-[a-z0-9]+)*$/;
/** Azure's rule for storage account names (Azurite's `devstoreaccount1` fits). */
export const ACCOUNT_NAME = /^[a-z0-9]{3,24}$/;

/** Validates the `datastore:` block (without `type`); unknown keys are refused. */
export const azureConfigSchema = z.object({
  container: z.string().min(1).regex(CONTAINER_NAME, {
    message: "not a valid Azure container name (3-63 lowercase letters, digits and single " +
      "hyphens, starting and ending with a letter or digit)",
  }),
  prefix: z.string().default("").transform((p) => p.replace(/^\/+|\/+$/g, "")).refine(
    (p) => p === "" || p.split("/").every((seg) => seg !== "" && seg !== "." && seg !== ".."),
    { message: `has an empty, "." or ".." segment; name the prefix plainly` },
  ),
  account: z.string().regex(ACCOUNT_NAME, {
    message: "not a valid storage account name (3-24 lowercase letters and digits)",
  }).optional(),
  endpoint: z.url({ protocol: /^https?$/, message: "not an http(s) URL" })
    .refine((u) => !urlHasCredentials(u), {
      message: credentialsInUrlRemedy("the endpoint URL"),
    }).optional(),
  ...Object.fromEntries(CREDENTIAL_KEYS.map((k) => [k, refused])),
}).strict() as unknown as z.ZodType<AzureConfig>;

const SPEC_FORM = "azure://container/prefix[?account=NAME&endpoint=URL]";

/**
 * `azure://container/prefix[?account=NAME&endpoint=URL]` as config keys;
 * the query's keys are checked by the schema (credential keys refused).
 */
export function parseAzureSpec(spec: string): Record<string, unknown> {
  const text = spec.trim();
  const bad = (why: string) =>
    new UsageError(
      `Invalid datastore ${JSON.stringify(redactSpec(text))}: ${why}. Use ${SPEC_FORM}.`,
    );
  const m = /^azure:\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?$/is.exec(text);
  if (text.includes("#")) throw bad("it has a #fragment, which Azure has no use for");
  if (m === null) throw bad("it is not an azure:// URL");
  if (m[1].includes("@") || m[1].includes(":")) {
    throw new UsageError(
      `Invalid datastore "azure://***": ${credentialsInUrlRemedy("the azure:// URL")}.`,
    );
  }
  if (m[1] === "") throw bad("it names no container");
  const out: Record<string, unknown> = { container: m[1], prefix: m[2] };
  for (const [k, v] of new URLSearchParams(m[3] ?? "")) {
    if (Object.hasOwn(out, k)) throw bad(`it sets "${k}" twice`);
    if (k === "endpoint" && urlHasCredentials(v)) {
      throw new UsageError(
        `Invalid datastore ${JSON.stringify(redactSpec(text))}: ` +
          `${credentialsInUrlRemedy("its endpoint URL")}.`,
      );
    }
    out[k] = v;
  }
  return out;
}

/** Azurite's well-known development account (public, documented by Microsoft). */
export const DEV_ACCOUNT = {
  name: "devstoreaccount1",
  key: "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
  endpoint: "http://127.0.0.1:10000/devstoreaccount1",
};

/** The fields of a connection string modelsync reads (names compared case-insensitively). */
interface ConnectionString {
  account?: string;
  key?: string;
  sas?: string;
  endpoint?: string;
  protocol?: string;
  suffix?: string;
}

const badConnectionString = (why: string) =>
  new UsageError(
    `Invalid AZURE_STORAGE_CONNECTION_STRING: ${why}. Copy it again from the storage ` +
      `account's "Access keys" page (or use AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY).`,
  );

/**
 * Parses `Name=value;Name=value` (values may hold `=`, as base64 keys and
 * SAS tokens do). Errors name fields, never values.
 */
export function parseConnectionString(text: string): ConnectionString {
  const fields = new Map<string, string>();
  for (const part of text.split(";")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq <= 0) throw badConnectionString("a part of it is not Name=value");
    fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  if (fields.get("usedevelopmentstorage")?.toLowerCase() === "true") {
    return { account: DEV_ACCOUNT.name, key: DEV_ACCOUNT.key, endpoint: DEV_ACCOUNT.endpoint };
  }
  const out: ConnectionString = {
    account: fields.get("accountname"),
    key: fields.get("accountkey"),
    sas: fields.get("sharedaccesssignature"),
    endpoint: fields.get("blobendpoint"),
    protocol: fields.get("defaultendpointsprotocol"),
    suffix: fields.get("endpointsuffix"),
  };
  if (out.key === undefined && out.sas === undefined) {
    throw badConnectionString("it has neither AccountKey nor SharedAccessSignature");
  }
  if (out.account === undefined && out.endpoint === undefined) {
    throw badConnectionString("it has neither AccountName nor BlobEndpoint");
  }
  return out;
}

/** The account name of a blob endpoint: its host's first label, or Azurite's first path segment. */
function accountOfEndpoint(endpoint: string): string | undefined {
  const u = new URL(endpoint);
  const path = u.pathname.split("/").filter((s) => s !== "");
  if (/^\d+\.\d+\.\d+\.\d+$|^localhost$|^\[/.test(u.hostname)) return path[0];
  return u.hostname.split(".")[0];
}

/**
 * Applies Azure's environment: account and credentials from
 * `AZURE_STORAGE_CONNECTION_STRING` when set, else `AZURE_STORAGE_ACCOUNT`
 * (or the config's `account`) with `AZURE_STORAGE_KEY` or
 * `AZURE_STORAGE_SAS_TOKEN`; the endpoint from the config, else the
 * connection string's `BlobEndpoint`, else the account's default. Problems
 * are `UsageError`s (exit 2) naming variables, never their values.
 */
export function resolveAzureConfig(
  config: AzureConfig,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): ResolvedAzureConfig {
  const fromEnv = (name: string) => env[name]?.trim() || undefined;
  const cs = fromEnv("AZURE_STORAGE_CONNECTION_STRING");
  let account: string | undefined;
  let credential: AzureCredential;
  let endpoint = config.endpoint;
  let source: string;
  let protocol = "https";
  let suffix = "core.windows.net";
  if (cs !== undefined) {
    const parsed = parseConnectionString(cs);
    source = "AZURE_STORAGE_CONNECTION_STRING";
    if (parsed.endpoint !== undefined && urlHasCredentials(parsed.endpoint)) {
      throw new UsageError(
        `Invalid AZURE_STORAGE_CONNECTION_STRING: its BlobEndpoint holds a user name, password ` +
          `or query; put a SAS token in SharedAccessSignature= instead.`,
      );
    }
    if (parsed.endpoint !== undefined && !/^https?:\/\/[^/]/i.test(parsed.endpoint)) {
      throw badConnectionString("its BlobEndpoint is not an http(s) URL");
    }
    endpoint ??= parsed.endpoint;
    account = parsed.account ?? accountOfEndpoint(parsed.endpoint!);
    credential = parsed.key !== undefined
      ? { kind: "key", key: parsed.key }
      : { kind: "sas", token: parsed.sas!.replace(/^\?/, "") };
    protocol = parsed.protocol ?? protocol;
    suffix = parsed.suffix ?? suffix;
  } else {
    account = fromEnv("AZURE_STORAGE_ACCOUNT");
    const key = fromEnv("AZURE_STORAGE_KEY");
    const sas = fromEnv("AZURE_STORAGE_SAS_TOKEN")?.replace(/^\?/, "");
    credential = key !== undefined
      ? { kind: "key", key }
      : sas !== undefined
      ? { kind: "sas", token: sas }
      : { kind: "none" };
    source = key !== undefined
      ? "AZURE_STORAGE_KEY"
      : sas !== undefined
      ? "AZURE_STORAGE_SAS_TOKEN"
      : "the environment";
  }
  if (config.account !== undefined && account !== undefined && account !== config.account) {
    throw new UsageError(
      `The datastore names storage account ${config.account}, but ${
        cs === undefined ? "AZURE_STORAGE_ACCOUNT" : "AZURE_STORAGE_CONNECTION_STRING"
      } is for account ${account}: use credentials of ${config.account}, or remove account: ` +
        `from the datastore.`,
    );
  }
  account = config.account ?? account;
  if (account === undefined) {
    throw new UsageError(
      `No Azure storage account is named: set ${AZURE_ENV_HINT} (or account: in the datastore).`,
    );
  }
  if (!ACCOUNT_NAME.test(account)) {
    throw new UsageError(
      `Invalid storage account name ${JSON.stringify(account.slice(0, 30))} from ${source}: ` +
        `3-24 lowercase letters and digits.`,
    );
  }
  if (credential.kind === "none") {
    throw new UsageError(
      `No credentials for storage account ${account}: set AZURE_STORAGE_KEY or ` +
        `AZURE_STORAGE_SAS_TOKEN (or AZURE_STORAGE_CONNECTION_STRING).`,
    );
  }
  const defaultEndpoint = endpoint === undefined;
  endpoint ??= `${protocol}://${account}.blob.${suffix}`;
  return {
    container: config.container,
    prefix: config.prefix,
    account,
    endpoint: endpoint.replace(/\/+$/, ""),
    defaultEndpoint,
    credential,
    source,
  };
}

/** `azure://container/prefix (account A | endpoint URL)`, never a credential. */
export function describeLocation(
  c: Pick<ResolvedAzureConfig, "container" | "prefix" | "account" | "endpoint" | "defaultEndpoint">,
): string {
  const where = `azure://${c.container}${c.prefix === "" ? "" : `/${c.prefix}`}`;
  if (c.defaultEndpoint) return `${where} (account ${c.account})`;
  try {
    const u = new URL(c.endpoint);
    return `${where} (endpoint ${u.protocol}//${u.host}${u.pathname === "/" ? "" : u.pathname})`;
  } catch {
    return `${where} (endpoint: an invalid URL)`;
  }
}
