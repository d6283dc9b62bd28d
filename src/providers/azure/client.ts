/**
 * The Azure provider's access to its container: one SDK client making one
 * attempt per request (the guard owns retries and deadlines), listings of
 * names under the datastore prefix, and every error mapped to a modelsync
 * error with no credential in it (design/azure.md, "Errors, deadlines,
 * retries").
 *
 * @module
 */
import {
  AnonymousCredential,
  type BlockBlobClient,
  ContainerClient,
  type ContainerListBlobFlatSegmentResponse,
  StorageSharedKeyCredential,
} from "@azure/storage-blob";
import { AzureLogger } from "@azure/logger";
import { getLogger } from "@logtape/logtape";
import { DatastoreError, ModelsyncError, NotFoundError } from "../../errors.ts";
import { AZURE_ENV_HINT, describeLocation, type ResolvedAzureConfig } from "./config.ts";

/** Turns an expected error (a lost race, a missing blob) into an answer; undefined: not expected. */
type Expect<F> = (err: unknown) => F | undefined;
/** One blob as listed, its name relative to the datastore prefix. */
export type Listed = { rel: string; etag: string; size: number; modifiedMs: number };
type StoreOptions = { callTimeoutMs: number; pageSize?: number };

/** Azure's most names per List Blobs page. */
const MAX_PAGE = 5_000;

const sdkLog = getLogger(["modelsync", "azure", "sdk"]);
// The SDK logs only when AZURE_LOG_LEVEL is set; its lines (which name URLs) go to the
// debug log, scrubbed of anything that looks like a signature.
AzureLogger.log = (...args: unknown[]) => {
  const text = args.filter((a): a is string => typeof a === "string").join(" ");
  if (text !== "") sdkLog.debug("{message}", { message: scrub(oneLine(text, 400)) });
};

/** A datastore's prefix of a container, and the client that reaches it. */
export class AzureStore {
  readonly container: ContainerClient;
  readonly containerName: string;
  /** The redacted location, e.g. `azure://container/prefix (endpoint …)`. */
  readonly where: string;
  /** Where the credentials came from (variable names), for remedies. */
  readonly source: string;
  readonly #prefix: string;
  readonly #opts: StoreOptions;
  readonly #secrets: string[];

  constructor(c: ResolvedAzureConfig, opts: StoreOptions) {
    this.containerName = c.container;
    this.where = describeLocation(c);
    this.source = c.source;
    this.#prefix = c.prefix === "" ? "" : `${c.prefix}/`;
    this.#opts = opts;
    const pipeline = {
      // One attempt; the server's own timeout a little past the guard's deadline.
      retryOptions: { maxTries: 1, tryTimeoutInMs: opts.callTimeoutMs + 10_000 },
      keepAliveOptions: { enable: true },
      userAgentOptions: { userAgentPrefix: "modelsync" },
    };
    const url = `${c.endpoint}/${c.container}`;
    if (c.credential.kind === "key") {
      this.#secrets = [c.credential.key];
      this.container = new ContainerClient(
        url,
        new StorageSharedKeyCredential(c.account, c.credential.key),
        pipeline,
      );
    } else {
      const token = c.credential.kind === "sas" ? c.credential.token : "";
      this.#secrets = [token, ...token.split("&").map((kv) => kv.split("=")[1] ?? "")]
        .filter((s) => s.length >= 8);
      this.container = new ContainerClient(
        token === "" ? url : `${url}?${token}`,
        new AnonymousCredential(),
        pipeline,
      );
    }
  }

  /** The client of a blob named `rel` below the datastore prefix. */
  blob(rel: string): BlockBlobClient {
    return this.container.getBlockBlobClient(this.#prefix + rel);
  }

  /**
   * Runs requests under the call's signal (the guard's, which ends with the
   * caller's); an error is mapped by {@linkcode azureFail} naming `what`,
   * unless `expect` answers it.
   */
  async run<T, F = never>(
    what: string,
    fn: (abortSignal: AbortSignal | undefined) => Promise<T>,
    opts: { signal?: AbortSignal; expect?: Expect<F> } = {},
  ): Promise<T | F> {
    try {
      return await fn(opts.signal);
    } catch (err) {
      const answer = opts.expect?.(err);
      if (answer !== undefined) return answer;
      throw this.fail(err, what);
    }
  }

  /** Maps an error met doing `what` (see {@linkcode azureFail}). */
  fail(err: unknown, what: string): unknown {
    return azureFail(err, this, what);
  }

  /** Text with every credential this store knows replaced by `***`. */
  redact(text: string): string {
    let out = text;
    for (const s of this.#secrets) out = out.replaceAll(s, "***");
    return scrub(out);
  }

  /**
   * One List Blobs page of the names under `rel`, continuing `marker`.
   * `more` is the marker of the next page, absent on the last one.
   */
  async list(
    rel: string,
    marker?: string,
    signal?: AbortSignal,
  ): Promise<{ objects: Listed[]; more?: string }> {
    const what = `list ${rel === "" ? "the datastore" : rel}`;
    return await this.run(what, async (abortSignal) => {
      const pages = this.container.listBlobsFlat({ prefix: this.#prefix + rel, abortSignal })
        .byPage({
          maxPageSize: this.#opts.pageSize ?? MAX_PAGE,
          ...(marker === undefined ? {} : { continuationToken: marker }),
        });
      const page = (await pages.next()).value as ContainerListBlobFlatSegmentResponse | undefined;
      const objects = (page?.segment.blobItems ?? []).map((b) => ({
        rel: b.name.slice(this.#prefix.length),
        etag: unquote(b.properties.etag),
        size: b.properties.contentLength ?? 0,
        modifiedMs: b.properties.lastModified?.getTime() ?? 0,
      }));
      const more = page?.continuationToken;
      return more ? { objects, more } : { objects };
    }, { signal });
  }
}

/** An ETag without its quotes: the version token of a record. */
export function unquote(etag: string | undefined): string {
  return (etag ?? "").replace(/^"|"$/g, "");
}

/** The HTTP status and Azure error code (`x-ms-error-code`) of an SDK error. */
export function errorOf(err: unknown): { status?: number; code?: string } {
  const e = err as {
    statusCode?: number;
    code?: string;
    details?: { errorCode?: string };
  } | null;
  return { status: e?.statusCode, code: e?.details?.errorCode ?? e?.code };
}

/** A lost conditional create: 409 BlobAlreadyExists, or a failed precondition (412). */
export function isExisting(err: unknown): boolean {
  const { status, code } = errorOf(err);
  return code === "BlobAlreadyExists" || status === 412;
}

/** A failed `If-Match`: 412, or the blob is gone (404 BlobNotFound). */
export function isStale(err: unknown): boolean {
  return errorOf(err).status === 412 || isNoBlob(err);
}

/** A missing blob (404), not a missing container. */
export function isNoBlob(err: unknown): boolean {
  const { status, code } = errorOf(err);
  return status === 404 && code !== "ContainerNotFound";
}

/** `expect` answers: `answer` for a missing blob. */
export const noBlob = <T>(answer: T) => (err: unknown) => (isNoBlob(err) ? answer : undefined);

const AUTH_ERRORS = new Set(
  ("AuthenticationFailed AuthorizationFailure AuthorizationPermissionMismatch " +
    "AuthorizationResourceTypeMismatch AuthorizationServiceMismatch AuthorizationProtocolMismatch " +
    "AuthorizationSourceIPMismatch InvalidAuthenticationInfo InsufficientAccountPermissions " +
    "NoAuthenticationInformation AccountIsDisabled").split(" "),
);
/** Transient Azure error codes and network error codes. */
const TRANSIENT = new Set(
  ("ServerBusy OperationTimedOut InternalError ServiceUnavailable REQUEST_SEND_ERROR " +
    "ECONNREFUSED ECONNRESET ETIMEDOUT EPIPE ENOTFOUND EAI_AGAIN ENETUNREACH EHOSTUNREACH " +
    "ECONNABORTED UND_ERR_SOCKET").split(" "),
);

/**
 * Maps an SDK or network error met doing `what` to a modelsync error. The
 * SDK's message is never shown for refused credentials (only the error
 * code), and any text shown or kept as the cause is scrubbed of the store's
 * credentials. Abort errors pass through (the guard owns them).
 */
export function azureFail(
  err: unknown,
  at: { where: string; containerName: string; source: string; redact(t: string): string },
  what: string,
): unknown {
  if (err instanceof ModelsyncError) return err;
  const e = err as Error & { code?: string };
  const name = e?.name ?? "Error";
  if (name === "AbortError") return err;
  const { status, code } = errorOf(err);
  const message = at.redact(oneLine(e?.message ?? "", 160));
  const head = `Cannot ${what} on the azure datastore ${at.where}`;
  const cause = new Error(at.redact(String(e?.stack ?? e?.message ?? err)));
  const fatal = (why: string) => new DatastoreError(`${head}: ${why}`, { cause });
  const label = code ?? (name !== "Error" && name !== "RestError" ? name : undefined);
  const safe = [label, status === undefined ? undefined : `HTTP ${status}`].filter(Boolean)
    .join(", ");
  if (code === "ContainerNotFound") {
    return new NotFoundError(
      `${head}: container ${at.containerName} does not exist. Create it (az storage ` +
        `container create --name ${at.containerName}), or fix the datastore spec.`,
      { cause },
    );
  }
  if (AUTH_ERRORS.has(code ?? "") || status === 401 || status === 403) {
    return fatal(
      `the credentials were refused (${safe || "HTTP 403"}). Check ${at.source} (credentials ` +
        `come from ${AZURE_ENV_HINT}), and that they may access container ${at.containerName}.`,
    );
  }
  if (
    (status !== undefined && (status >= 500 || status === 429 || status === 408)) ||
    TRANSIENT.has(code ?? "") ||
    /socket hang up|ECONNRESET|ECONNREFUSED|network|connection|timed? ?out/i.test(message) ||
    // A connection cut while the answer was read ("Error reading response as
    // text: aborted"): the SDK calls it a parse error, but nothing was parsed.
    (code === "PARSE_ERROR" && /reading response|aborted/i.test(message))
  ) {
    const fault = code === "REQUEST_SEND_ERROR" && message !== ""
      ? message
      : safe || message || name;
    return new DatastoreError(
      `${head}: ${fault} (transient). Check that the endpoint is reachable; modelsync ` +
        `retries such faults.`,
      { cause, retryable: true },
    );
  }
  return fatal(`${safe || name}${message === "" || code !== undefined ? "" : ` (${message})`}.`);
}

/** Drops signatures, SAS queries and long key-like runs from text. */
function scrub(text: string): string {
  return text
    .replace(
      /([?&])(sig|se|st|sv|sp|srt|ss|sr|spr|skoid|sktid|skt|ske|sks|skv)=[^&\s"']*/gi,
      "$1$2=***",
    )
    .replace(/[A-Za-z0-9+/]{40,}={0,2}/g, "…");
}

function oneLine(text: string, max: number): string {
  return String(text ?? "").split("\n")[0].slice(0, max);
}
