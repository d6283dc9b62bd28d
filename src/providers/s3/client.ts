/**
 * The SDK client of the S3 provider, and how its errors become modelsync
 * errors. The client makes exactly one attempt per request (the guard in
 * `src/provider/guard.ts` owns retries and deadlines), has connection and
 * request timeouts of its own, counts requests, and records the server's
 * `Date` header of every response (lock expiry is judged by it).
 *
 * @module
 */
import { S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { DatastoreError, ModelsyncError, NotFoundError } from "../../errors.ts";
import { getLogger } from "@logtape/logtape";
import type { ResolvedS3Config } from "./config.ts";

/** The server's clock as seen in one response. */
export interface ServerDate {
  /** The `Date` header, 1 s resolution (truncated by the server). */
  dateMs: number;
  /** Local clock when the response arrived. */
  localMs: number;
}

/** The client plus what its middleware observed. */
export interface S3Handle {
  client: S3Client;
  /** Requests sent so far (for tests, benchmarks and debug logs). */
  requests: { count: number };
  /** The most recent server Date seen, if any. */
  lastDate: ServerDate | null;
}

/** Creates the client for a resolved configuration. */
export function makeClient(
  c: ResolvedS3Config,
  opts: { callTimeoutMs: number },
): S3Handle {
  const client = new S3Client({
    ...(c.region === undefined ? {} : { region: c.region }),
    ...(c.endpoint === undefined ? {} : { endpoint: c.endpoint }),
    forcePathStyle: c.forcePathStyle,
    // The guard retries idempotent calls with backoff; CAS writes never blindly.
    maxAttempts: 1,
    // We send SHA-256 checksums ourselves where they matter; no CRC32 on every PUT.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    // The SDK's own warnings go to our debug log, never to stdout/stderr raw.
    logger: sdkLogger,
    requestHandler: {
      connectionTimeout: Math.min(10_000, opts.callTimeoutMs),
      // Until the response headers; blob transfers pass a longer one per request.
      requestTimeout: opts.callTimeoutMs,
      throwOnRequestTimeout: true,
    },
  });
  const handle: S3Handle = { client, requests: { count: 0 }, lastDate: null };
  const log = getLogger(["modelsync", "s3"]);
  const note = (headers: Record<string, string> | undefined) => {
    const date = headers?.date ?? headers?.Date;
    if (date === undefined) return undefined;
    const dateMs = Date.parse(date);
    if (!Number.isFinite(dateMs)) return undefined;
    const seen = { dateMs, localMs: Date.now() };
    handle.lastDate = seen;
    return seen;
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      handle.requests.count++;
      log.debug("s3 {command}", { command: context.commandName });
      try {
        const result = await next(args);
        const seen = note((result.response as { headers?: Record<string, string> })?.headers);
        if (seen !== undefined && result.output !== null && typeof result.output === "object") {
          Object.defineProperty(result.output, SERVER_DATE, { value: seen, enumerable: false });
        }
        return result;
      } catch (err) {
        const seen = note(
          (err as { $response?: { headers?: Record<string, string> } })
            ?.$response?.headers,
        );
        if (seen !== undefined && err !== null && typeof err === "object") {
          Object.defineProperty(err, SERVER_DATE, { value: seen, enumerable: false });
        }
        throw err;
      }
    },
    { step: "initialize", name: "modelsyncServerDate", priority: "high" },
  );
  return handle;
}

const sdkLog = getLogger(["modelsync", "s3", "sdk"]);
const sdkLogger = {
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (...args: unknown[]) => sdkNote(args),
  error: (...args: unknown[]) => sdkNote(args),
};

/**
 * Logs the SDK's own warnings at debug level, text only: its objects can
 * carry request headers (credentials), so they are never printed.
 */
function sdkNote(args: unknown[]): void {
  const text = args.filter((a): a is string => typeof a === "string").join(" ");
  if (text !== "") sdkLog.debug("{message}", { message: oneLine(text) });
}

const SERVER_DATE = Symbol.for("modelsync.s3.serverDate");

/** The server Date of the response an output (or error) came from. */
export function serverDateOf(outputOrError: unknown): ServerDate | undefined {
  if (outputOrError === null || typeof outputOrError !== "object") return undefined;
  return (outputOrError as Record<symbol, ServerDate | undefined>)[SERVER_DATE];
}

/** HTTP status of an SDK error, if any. */
export function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** True for a failed precondition (412): a lost compare-and-swap. */
export function isPreconditionFailed(err: unknown): boolean {
  return statusOf(err) === 412 || (err as Error)?.name === "PreconditionFailed";
}

/** True for a missing key (404 on GET/HEAD), but not a missing bucket. */
export function isNoSuchKey(err: unknown): boolean {
  const name = (err as Error)?.name;
  if (name === "NoSuchBucket") return false;
  return name === "NoSuchKey" || name === "NotFound" || statusOf(err) === 404;
}

const AUTH_ERRORS = new Set([
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "AccessDenied",
  "ExpiredToken",
  "TokenRefreshRequired",
  "InvalidToken",
  "ExpiredTokenException",
  "AccountProblem",
  "AllAccessDisabled",
  "InvalidClientTokenId",
]);

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
]);

/** True for an AccessDenied-like refusal (read-only credentials, policy). */
export function isAccessDenied(err: unknown): boolean {
  return (err as Error)?.name === "AccessDenied" || statusOf(err) === 403;
}

/** Where and what, for messages. */
export interface FailContext {
  /** The redacted location, e.g. `s3://bucket/prefix (endpoint …)`. */
  where: string;
  bucket: string;
  /** What was being done, e.g. "read manifest vpc/m1". */
  what: string;
}

/**
 * Maps an SDK or network error to a modelsync error. Messages never include
 * the SDK's raw message for auth errors (it can echo a key id), only the
 * error name. Abort errors pass through unchanged (the guard owns them).
 */
export function s3Fail(err: unknown, ctx: FailContext): unknown {
  if (err instanceof ModelsyncError) return err;
  const e = err as Error & { code?: string; $fault?: string; $retryable?: unknown };
  const name = e?.name ?? "Error";
  if (name === "AbortError") return err;
  const status = statusOf(err);
  const head = `Cannot ${ctx.what} on the s3 datastore ${ctx.where}`;
  if (name === "NoSuchBucket") {
    return new NotFoundError(
      `${head}: bucket ${ctx.bucket} does not exist. Create it, or fix the datastore spec.`,
      { cause: err },
    );
  }
  if (AUTH_ERRORS.has(name) || status === 401 || status === 403) {
    return new DatastoreError(
      `${head}: the credentials were refused (${safeName(name, status)}). Check ` +
        `AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN or AWS_PROFILE, and that ` +
        `they may access bucket ${ctx.bucket}.`,
      { cause: err, retryable: false },
    );
  }
  if (name === "CredentialsProviderError" || /could not load credentials/i.test(e?.message ?? "")) {
    return new DatastoreError(
      `${head}: no AWS credentials found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ` +
        `or AWS_PROFILE.`,
      { cause: err, retryable: false },
    );
  }
  if (/region is missing/i.test(e?.message ?? "")) {
    return new DatastoreError(
      `${head}: no AWS region is set. Set AWS_REGION, or region: in modelsync.yaml.`,
      { cause: err, retryable: false },
    );
  }
  const transient = (status !== undefined && (status >= 500 || status === 429)) ||
    name === "SlowDown" || name === "RequestTimeout" || name === "TimeoutError" ||
    name === "InternalError" ||
    name === "ServiceUnavailable" || (e?.code !== undefined && NETWORK_CODES.has(e.code)) ||
    /socket hang up|ECONNRESET|ECONNREFUSED|network|connection/i.test(e?.message ?? "") ||
    e?.$retryable !== undefined;
  if (transient) {
    return new DatastoreError(
      `${head}: ${faultName(e, status)} (transient). Check that the endpoint is reachable; ` +
        `modelsync retries such faults.`,
      { cause: err, retryable: true },
    );
  }
  if (name === "RequestTimeTooSkewed") {
    return new DatastoreError(
      `${head}: the local clock is too far from the server's (RequestTimeTooSkewed). Fix the ` +
        `clock (NTP).`,
      { cause: err, retryable: false },
    );
  }
  return new DatastoreError(
    `${head}: ${safeName(name, status)}${
      err instanceof S3ServiceException ? "" : ` (${oneLine(e?.message)})`
    }.`,
    { cause: err, retryable: false },
  );
}

/**
 * A transient fault's most specific safe name: the S3 error name, else the
 * network error code (ECONNREFUSED…), else the first line of its message.
 */
function faultName(e: (Error & { code?: string }) | undefined, status: number | undefined): string {
  const name = e?.name ?? "Error";
  if (name !== "Error" && name !== "TypeError") return safeName(name, status);
  if (typeof e?.code === "string" && e.code !== "") return safeName(e.code, status);
  const line = oneLine(e?.message);
  return line === "" ? safeName(name, status) : safeName(line, status);
}

function safeName(name: string, status: number | undefined): string {
  return status === undefined ? name : `${name}, HTTP ${status}`;
}

function oneLine(text: string | undefined): string {
  return String(text ?? "").split("\n")[0].replace(/[A-Z0-9]{16,}/g, "…").slice(0, 160);
}
