/**
 * Configuration of the S3 provider: the `datastore:` block or the keys of
 * `s3://bucket/prefix?…`, resolved against the AWS environment
 * (design/s3.md, "Configuration"). Credentials are never configuration.
 *
 * @example
 * ```ts
 * import { parseS3Spec, resolveS3Config, s3ConfigSchema } from "./config.ts";
 * const config = s3ConfigSchema.parse(parseS3Spec("s3://models/team/"));
 * const r = resolveS3Config(config, { AWS_ENDPOINT_URL_S3: "http://127.0.0.1:9000" });
 * console.log(r.prefix, r.endpoint, r.forcePathStyle); // team http://127.0.0.1:9000 true
 * ```
 * @module
 */
import { z } from "zod";
import { UsageError } from "../../errors.ts";
import { redactSpec } from "../../repo/datastore_spec.ts";

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

/** The configuration with the environment applied: what the client uses. */
export interface ResolvedS3Config extends S3Config {
  forcePathStyle: boolean;
}

/** Keys that would hold credentials: refused with a remedy, never read. */
export const CREDENTIAL_KEYS: readonly string[] =
  ("accessKeyId secretAccessKey sessionToken credentials accessKey secretKey access_key_id " +
    "secret_access_key session_token aws_access_key_id aws_secret_access_key aws_session_token " +
    "password secret").split(" ");

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
 * True when a URL carries user info (`https://user:pass@host`); also for
 * text that does not parse as a URL but has an `@` in it (refusing errs on
 * the safe side: such an endpoint would not work anyway).
 */
export function endpointHasCredentials(url: string): boolean {
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    return url.includes("@");
  }
  return u.username !== "" || u.password !== "";
}

const refused = z.unknown().refine((v) => v === undefined, { message: CREDENTIALS_REMEDY })
  .optional();

/** Validates the `datastore:` block (without `type`); unknown keys are refused. */
export const s3ConfigSchema = z.object({
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
  forcePathStyle: z.union([
    z.boolean(),
    z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1"),
  ]).optional(),
  ...Object.fromEntries(CREDENTIAL_KEYS.map((k) => [k, refused])),
}).strict() as unknown as z.ZodType<S3Config>;

/**
 * `s3://bucket/prefix[?endpoint=URL&region=R&forcePathStyle=true]` as config
 * keys; the query's keys are checked by the schema (credential keys refused).
 */
export function parseS3Spec(spec: string): Record<string, unknown> {
  const bad = (why: string) =>
    new UsageError(
      `Invalid datastore ${JSON.stringify(redactSpec(spec))}: ${why}. Use ` +
        `s3://bucket/prefix[?endpoint=URL&region=R&forcePathStyle=true].`,
    );
  const m = /^s3:\/\/([^/?]*)([^?]*)(?:\?(.*))?$/is.exec(spec.trim());
  if (m === null) throw bad("it is not an s3:// URL");
  if (hasUserInfo(spec.trim().slice("s3://".length).split("?")[0])) {
    throw new UsageError(
      `Invalid datastore "s3://***": ${credentialsInUrlRemedy("the s3:// URL")}.`,
    );
  }
  if (spec.includes("#")) {
    throw bad("it has a #fragment, which S3 has no use for (percent-encode a # in a key as %23)");
  }
  if (m[1] === "") throw bad("it names no bucket");
  const out: Record<string, unknown> = { bucket: m[1], prefix: m[2] };
  for (const [k, v] of new URLSearchParams(m[3] ?? "")) {
    if (Object.hasOwn(out, k)) throw bad(`it sets "${k}" twice`);
    if (k === "endpoint" && endpointHasCredentials(v)) {
      throw new UsageError(
        `Invalid datastore ${JSON.stringify(redactSpec(spec))}: ` +
          `${credentialsInUrlRemedy("its endpoint URL")}.`,
      );
    }
    out[k] = v;
  }
  return out;
}

/**
 * True when the part of an `s3://` spec after the scheme starts with user
 * info: an `@` before the first `/` (never valid in a bucket name), or a `:`
 * (never valid in a bucket name either) before the first `/` and before an
 * `@` (a secret key may itself hold a `/`).
 */
function hasUserInfo(location: string): boolean {
  const at = location.indexOf("@");
  if (at < 0) return false;
  const slash = location.indexOf("/");
  const colon = location.indexOf(":");
  const beforeSlash = (i: number) => slash < 0 || i < slash;
  return beforeSlash(at) || (colon >= 0 && colon < at && beforeSlash(colon));
}

/**
 * Applies the AWS environment: the endpoint from the config, else
 * `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL` (refused, exit 2, with a
 * user name or password); path style by default with an endpoint; region
 * `us-east-1` for a custom endpoint when neither the config nor
 * `AWS_REGION`/`AWS_DEFAULT_REGION` names one.
 */
export function resolveS3Config(
  config: S3Config,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): ResolvedS3Config {
  const fromEnv = (name: string) => env[name]?.trim() || undefined;
  const endpointFrom = (name: string) => {
    const v = fromEnv(name);
    if (v === undefined || !endpointHasCredentials(v)) return v;
    throw new UsageError(`Invalid ${name}: ${credentialsInUrlRemedy("the S3 endpoint URL")}.`);
  };
  const endpoint = config.endpoint ?? endpointFrom("AWS_ENDPOINT_URL_S3") ??
    endpointFrom("AWS_ENDPOINT_URL");
  const region = config.region ?? fromEnv("AWS_REGION") ?? fromEnv("AWS_DEFAULT_REGION") ??
    (endpoint === undefined ? undefined : "us-east-1");
  return {
    bucket: config.bucket,
    prefix: config.prefix,
    ...(region === undefined ? {} : { region }),
    ...(endpoint === undefined ? {} : { endpoint }),
    forcePathStyle: config.forcePathStyle ?? endpoint !== undefined,
  };
}

/** `s3://bucket/prefix (endpoint URL)`, the endpoint without user info, query or fragment. */
export function describeLocation(c: S3Config): string {
  const where = `s3://${c.bucket}${c.prefix === "" ? "" : `/${c.prefix}`}`;
  if (c.endpoint === undefined) return where;
  try {
    const u = new URL(c.endpoint);
    return `${where} (endpoint ${u.protocol}//${u.host}${u.pathname === "/" ? "" : u.pathname})`;
  } catch {
    return `${where} (endpoint: an invalid URL)`;
  }
}
