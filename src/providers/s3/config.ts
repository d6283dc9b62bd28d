/**
 * Configuration of the S3 provider: the `datastore:` block of
 * `modelsync.yaml` (or the keys parsed from `s3://bucket/prefix?endpoint=…`),
 * and how it resolves against the AWS-standard environment.
 *
 * Credentials are never configuration: they come from the SDK's default chain
 * (environment, profile, instance role). A credentials-looking key is
 * refused, and so is an endpoint URL carrying a user name or password, in
 * the config, the spec or `AWS_ENDPOINT_URL*` ({@linkcode endpointHasCredentials}),
 * so no secret is ever written to `modelsync.yaml`.
 *
 * @example
 * ```ts
 * import { resolveS3Config, s3ConfigSchema } from "./config.ts";
 * const config = s3ConfigSchema.parse({ bucket: "models", prefix: "team/" });
 * const r = resolveS3Config(config, { AWS_ENDPOINT_URL_S3: "http://127.0.0.1:9000" });
 * console.log(r.endpoint, r.forcePathStyle); // http://127.0.0.1:9000 true
 * ```
 * @module
 */
import { z } from "zod";
import { UsageError } from "../../errors.ts";

/** Configuration of the S3 provider, as validated. */
export interface S3Config {
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing slashes ("" = bucket root). */
  prefix: string;
  region?: string;
  /** Custom endpoint URL (MinIO, R2, a local server); default AWS. */
  endpoint?: string;
  /** Path-style addressing; default true when an endpoint is set. */
  forcePathStyle?: boolean;
}

/** Keys that would hold credentials: refused with a remedy, never read. */
export const CREDENTIAL_KEYS = [
  "accessKeyId",
  "secretAccessKey",
  "sessionToken",
  "credentials",
  "accessKey",
  "secretKey",
  "access_key_id",
  "secret_access_key",
  "session_token",
  "aws_access_key_id",
  "aws_secret_access_key",
  "aws_session_token",
  "password",
  "secret",
] as const;

const CREDENTIALS_REMEDY = "credentials are never read from modelsync.yaml or the datastore " +
  "spec; remove it and use the AWS environment variables (AWS_ACCESS_KEY_ID, " +
  "AWS_SECRET_ACCESS_KEY) or a profile (AWS_PROFILE)";

/**
 * The remedy for a URL holding a user name or password, one clause:
 * `what` names the URL, e.g. "the endpoint URL".
 */
export function credentialsInUrlRemedy(what: string): string {
  return `${what} holds a user name or password, but credentials come from the AWS ` +
    `environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE), never from ` +
    `a URL: remove them from it`;
}

/**
 * True when a URL carries user info (`https://user:pass@host`). Also for
 * text that does not parse as a URL but has an `@` in it (erring on the
 * side of refusing: such an endpoint would not work anyway).
 *
 * @example
 * ```ts
 * import { endpointHasCredentials } from "./config.ts";
 * endpointHasCredentials("https://key:secret@minio.local:9000"); // true
 * endpointHasCredentials("https://minio.local:9000"); // false
 * ```
 */
export function endpointHasCredentials(url: string): boolean {
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    // Not a URL (a password with a "/" in it breaks parsing): any "@" counts.
    return url.includes("@");
  }
  return u.username !== "" || u.password !== "";
}

const boolish = z.union([
  z.boolean(),
  z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1"),
]);

const refused = z.unknown().refine((v) => v === undefined, { message: CREDENTIALS_REMEDY })
  .optional();

/** Validates the `datastore:` block (without `type`); unknown keys are refused. */
export const s3ConfigSchema: z.ZodType<S3Config> = z.object({
  bucket: z.string().min(1).regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, {
    message: "not a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)",
  }),
  prefix: z.string().default("").transform((p) => p.replace(/^\/+|\/+$/g, "")).refine(
    (p) => p === "" || p.split("/").every((seg) => seg !== "" && seg !== "." && seg !== ".."),
    { message: `has an empty, "." or ".." segment; name the prefix plainly` },
  ),
  region: z.string().min(1).optional(),
  endpoint: z.url({ protocol: /^https?$/, message: "not an http(s) URL" })
    .refine((u) => !endpointHasCredentials(u), {
      message: credentialsInUrlRemedy("the endpoint URL"),
    }).optional(),
  forcePathStyle: boolish.optional(),
  ...Object.fromEntries(CREDENTIAL_KEYS.map((k) => [k, refused])),
}).strict().transform((c) => {
  const out: S3Config = { bucket: c.bucket, prefix: c.prefix };
  if (c.region !== undefined) out.region = c.region;
  if (c.endpoint !== undefined) out.endpoint = c.endpoint;
  if (c.forcePathStyle !== undefined) out.forcePathStyle = c.forcePathStyle;
  return out;
}) as unknown as z.ZodType<S3Config>;

/** The configuration with the environment applied: what the client uses. */
export interface ResolvedS3Config {
  bucket: string;
  prefix: string;
  /** Undefined: the SDK's default chain (AWS_REGION, profile). */
  region?: string;
  endpoint?: string;
  forcePathStyle: boolean;
}

/**
 * Applies the AWS-standard environment: the endpoint from the config, else
 * `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`; path style by default when
 * an endpoint is set; region `us-east-1` for a custom endpoint when neither
 * the config nor `AWS_REGION`/`AWS_DEFAULT_REGION` names one. An endpoint
 * from the environment that holds a user name or password is a
 * {@linkcode UsageError} (exit 2) that never shows it.
 */
export function resolveS3Config(
  config: S3Config,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): ResolvedS3Config {
  const fromEnv = (name: string) => {
    const v = env[name]?.trim();
    return v === undefined || v === "" ? undefined : v;
  };
  const source = config.endpoint !== undefined
    ? undefined
    : (["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"] as const).find((n) => fromEnv(n) !== undefined);
  const endpoint = config.endpoint ?? (source === undefined ? undefined : fromEnv(source));
  if (endpoint !== undefined && endpointHasCredentials(endpoint)) {
    throw new UsageError(
      `Invalid ${source ?? "endpoint"}: ${credentialsInUrlRemedy("the S3 endpoint URL")}.`,
    );
  }
  const region = config.region ?? fromEnv("AWS_REGION") ?? fromEnv("AWS_DEFAULT_REGION") ??
    (endpoint !== undefined ? "us-east-1" : undefined);
  return {
    bucket: config.bucket,
    prefix: config.prefix,
    ...(region === undefined ? {} : { region }),
    ...(endpoint === undefined ? {} : { endpoint }),
    forcePathStyle: config.forcePathStyle ?? endpoint !== undefined,
  };
}

/**
 * The location for messages: `s3://bucket/prefix (endpoint URL)`. An
 * endpoint's user info, query and fragment are dropped (they could hold
 * secrets).
 */
export function describeLocation(c: ResolvedS3Config): string {
  const where = `s3://${c.bucket}${c.prefix === "" ? "" : `/${c.prefix}`}`;
  if (c.endpoint === undefined) return where;
  return `${where} (endpoint ${redactEndpoint(c.endpoint)})`;
}

/** An endpoint URL without user info, query or fragment. */
export function redactEndpoint(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    return `${u.protocol}//${u.host}${u.pathname === "/" ? "" : u.pathname}`;
  } catch {
    return "(invalid URL)";
  }
}
