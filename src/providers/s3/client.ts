/**
 * The S3 provider's access to its bucket: one SDK client making one attempt
 * per request (the guard owns retries and deadlines), each response's `Date`
 * attached to its output, and every error mapped to a modelsync error
 * (design/s3.md, "Errors, deadlines, retries").
 *
 * @module
 */
import {
  type $Command,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
  type ServiceInputTypes,
  type ServiceOutputTypes,
} from "@aws-sdk/client-s3";
import { getLogger } from "@logtape/logtape";
import { DatastoreError, ModelsyncError, NotFoundError } from "../../errors.ts";
import { describeLocation, type ResolvedS3Config } from "./config.ts";

const SERVER_DATE = Symbol.for("modelsync.s3.serverDate");
type Headers = Record<string, string> | undefined;
/** Turns an expected error (a lost race, a missing key) into an answer; undefined: not expected. */
type Expect<F> = (err: unknown) => F | undefined;
/** One object as listed, its key relative to the datastore prefix. */
type Listed = { rel: string; etag: string; size: number; modifiedMs: number };
type StoreOptions = { callTimeoutMs: number; pageSize?: number };

/** A datastore's prefix of a bucket, and the client that reaches it. */
export class S3Store {
  readonly client: S3Client;
  readonly bucket: string;
  /** The redacted location, e.g. `s3://bucket/prefix (endpoint …)`. */
  readonly where: string;
  /** Requests sent so far (tests, benchmarks, debug logs). */
  requests = 0;
  readonly #prefix: string;
  readonly #opts: StoreOptions;

  constructor(c: ResolvedS3Config, opts: StoreOptions) {
    this.bucket = c.bucket;
    this.where = describeLocation(c);
    this.#prefix = c.prefix === "" ? "" : `${c.prefix}/`;
    this.#opts = opts;
    this.client = new S3Client({
      ...(c.region === undefined ? {} : { region: c.region }),
      ...(c.endpoint === undefined ? {} : { endpoint: c.endpoint }),
      forcePathStyle: c.forcePathStyle,
      maxAttempts: 1,
      // SHA-256 checksums are sent where they matter; no CRC32 on every PUT.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      logger: sdkLogger,
      requestHandler: {
        connectionTimeout: Math.min(10_000, opts.callTimeoutMs),
        requestTimeout: opts.callTimeoutMs, // until the response headers
        throwOnRequestTimeout: true,
      },
    });
    const log = getLogger(["modelsync", "s3"]);
    const note = (target: unknown, headers: Headers) => {
      const dateMs = Date.parse(headers?.date ?? headers?.Date ?? "");
      if (Number.isFinite(dateMs) && target !== null && typeof target === "object") {
        Object.defineProperty(target, SERVER_DATE, { value: dateMs, enumerable: false });
      }
    };
    this.client.middlewareStack.add((next, context) => async (args) => {
      this.requests++;
      log.debug("s3 {command}", { command: context.commandName });
      try {
        const result = await next(args);
        note(result.output, (result.response as { headers?: Headers })?.headers);
        return result;
      } catch (err) {
        note(err, (err as { $response?: { headers?: Headers } })?.$response?.headers);
        throw err;
      }
    }, { step: "initialize", name: "modelsyncServerDate", priority: "high" });
  }

  /** Bucket and object key of a key relative to the datastore prefix. */
  at(rel: string): { Bucket: string; Key: string } {
    return { Bucket: this.bucket, Key: this.#prefix + rel };
  }

  /**
   * Runs requests under the call's signal (the guard's, which ends with the
   * caller's); an error is mapped by {@linkcode s3Fail} naming `what`, unless
   * `expect` answers it.
   */
  async run<T, F = never>(
    what: string,
    fn: (signal: AbortSignal | undefined) => Promise<T>,
    opts: { signal?: AbortSignal; expect?: Expect<F> } = {},
  ): Promise<T | F> {
    try {
      return await fn(opts.signal);
    } catch (err) {
      const answer = opts.expect?.(err);
      if (answer !== undefined) return answer;
      throw s3Fail(err, this, what);
    }
  }

  /** Sends one command (one sending `bytes` gets +1 s per MiB, as the guard allows). */
  send<I extends ServiceInputTypes, O extends ServiceOutputTypes, F = never>(
    what: string,
    // deno-lint-ignore no-explicit-any
    command: $Command<I, O, any, ServiceInputTypes, ServiceOutputTypes>,
    opts: { signal?: AbortSignal; bytes?: number; expect?: Expect<F> } = {},
  ): Promise<O | F> {
    const requestTimeout = this.#opts.callTimeoutMs + Math.ceil((opts.bytes ?? 0) / 2 ** 20) * 1e3;
    return this.run(
      what,
      (abortSignal) => this.client.send(command, { abortSignal, requestTimeout }),
      opts,
    );
  }

  /**
   * One ListObjectsV2 page of the keys under `rel` after the relative key
   * `after` (`StartAfter`: the cursor is a key, so a listing can jump).
   * `more` is the `after` of the next page, absent on the last one.
   */
  async list(
    rel: string,
    after?: string,
    signal?: AbortSignal,
  ): Promise<{ objects: Listed[]; more?: string }> {
    const out = await this.send(
      `list ${rel === "" ? "the datastore" : rel}`,
      new ListObjectsV2Command({
        Bucket: this.bucket,
        Prefix: this.#prefix + rel,
        ...(after === undefined ? {} : { StartAfter: this.#prefix + after }),
        ...(this.#opts.pageSize && { MaxKeys: this.#opts.pageSize }),
      }),
      { signal },
    );
    const objects = (out.Contents ?? []).flatMap((o) =>
      o.Key === undefined ? [] : [{
        rel: o.Key.slice(this.#prefix.length),
        etag: unquote(o.ETag),
        size: o.Size ?? 0,
        modifiedMs: o.LastModified?.getTime() ?? 0,
      }]
    );
    const last = objects.at(-1)?.rel;
    return out.IsTruncated && last !== undefined ? { objects, more: last } : { objects };
  }
}

const sdkLog = getLogger(["modelsync", "s3", "sdk"]);
/** The SDK's own warnings, text only (its objects can carry credentials), at debug level. */
const sdkNote = (...args: unknown[]) => {
  const text = args.filter((a): a is string => typeof a === "string").join(" ");
  if (text !== "") sdkLog.debug("{message}", { message: oneLine(text) });
};
const sdkLogger = { trace() {}, debug() {}, info() {}, warn: sdkNote, error: sdkNote };

/** The server's `Date` (1 s resolution) of the response an output came from. */
export function serverDateOf(output: unknown): number | undefined {
  return (output as Record<symbol, number | undefined> | null)?.[SERVER_DATE];
}

/** An ETag without its quotes: the version token of a record. */
export function unquote(etag: string | undefined): string {
  return (etag ?? "").replace(/^"|"$/g, "");
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** A lost conditional write: 412, or 409 `ConditionalRequestConflict` (a concurrent one won). */
export function isLostRace(err: unknown): boolean {
  const name = (err as Error)?.name;
  return statusOf(err) === 412 || name === "PreconditionFailed" ||
    name === "ConditionalRequestConflict";
}

/** `expect` answers: null for a failed condition (a lost race, or the record is gone). */
export const conditionFailed = (err: unknown) =>
  isLostRace(err) || isNoSuchKey(err) ? null : undefined;
/** `expect` answers: `answer` for a missing key. */
export const noKey = <T>(answer: T) => (err: unknown) => (isNoSuchKey(err) ? answer : undefined);

/** A missing key (404 on GET, HEAD, conditional PUT or DELETE), not a missing bucket. */
export function isNoSuchKey(err: unknown): boolean {
  const name = (err as Error)?.name;
  return name !== "NoSuchBucket" &&
    (name === "NoSuchKey" || name === "NotFound" || statusOf(err) === 404);
}

const AUTH_ERRORS = new Set(
  ("InvalidAccessKeyId SignatureDoesNotMatch AccessDenied ExpiredToken TokenRefreshRequired " +
    "InvalidToken ExpiredTokenException AccountProblem AllAccessDisabled InvalidClientTokenId")
    .split(" "),
);
/** Transient S3 error names and network error codes. */
const TRANSIENT = new Set(
  ("SlowDown RequestTimeout TimeoutError InternalError ServiceUnavailable ECONNREFUSED " +
    "ECONNRESET ETIMEDOUT EPIPE ENOTFOUND EAI_AGAIN ENETUNREACH EHOSTUNREACH ECONNABORTED " +
    "UND_ERR_SOCKET").split(" "),
);

/**
 * Maps an SDK or network error met doing `what` to a modelsync error. Auth
 * errors never carry the SDK's message (it can echo a key id), only the
 * error name. Abort errors pass through (the guard owns them).
 */
export function s3Fail(err: unknown, at: { where: string; bucket: string }, what: string): unknown {
  if (err instanceof ModelsyncError) return err;
  const e = err as Error & { code?: string; $retryable?: unknown };
  const name = e?.name ?? "Error";
  if (name === "AbortError") return err;
  const status = statusOf(err);
  const message = e?.message ?? "";
  const head = `Cannot ${what} on the s3 datastore ${at.where}`;
  const fatal = (why: string) => new DatastoreError(`${head}: ${why}`, { cause: err });
  if (name === "NoSuchBucket") {
    return new NotFoundError(
      `${head}: bucket ${at.bucket} does not exist. Create it, or fix the datastore spec.`,
      { cause: err },
    );
  }
  if (name === "RequestTimeTooSkewed") {
    return fatal(
      "the local clock is too far from the server's (RequestTimeTooSkewed). Fix it (NTP).",
    );
  }
  if (AUTH_ERRORS.has(name) || status === 401 || status === 403) {
    return fatal(
      `the credentials were refused (${safeName(name, status)}). Check AWS_ACCESS_KEY_ID/` +
        `AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN or AWS_PROFILE, and that they may access ` +
        `bucket ${at.bucket}.`,
    );
  }
  if (name === "CredentialsProviderError" || /could not load credentials/i.test(message)) {
    return fatal(
      "no AWS credentials found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE.",
    );
  }
  if (/region is missing/i.test(message)) {
    return fatal("no AWS region is set. Set AWS_REGION, or region: in modelsync.yaml.");
  }
  if (
    (status !== undefined && (status >= 500 || status === 429)) || TRANSIENT.has(name) ||
    TRANSIENT.has(e?.code ?? "") || e?.$retryable !== undefined ||
    /socket hang up|ECONNRESET|ECONNREFUSED|network|connection/i.test(message)
  ) {
    // The most specific safe name: S3 error name, network code, or first line of the message.
    const fault = name !== "Error" && name !== "TypeError"
      ? name
      : e?.code || oneLine(message) || name;
    return new DatastoreError(
      `${head}: ${safeName(fault, status)} (transient). Check that the endpoint is reachable; ` +
        `modelsync retries such faults.`,
      { cause: err, retryable: true },
    );
  }
  const detail = err instanceof S3ServiceException ? "" : ` (${oneLine(message)})`;
  return fatal(`${safeName(name, status)}${detail}.`);
}

function safeName(name: string, status: number | undefined): string {
  return status === undefined ? name : `${name}, HTTP ${status}`;
}

function oneLine(text: string | undefined): string {
  return String(text ?? "").split("\n")[0].replace(/[A-Z0-9]{16,}/g, "…").slice(0, 160);
}
