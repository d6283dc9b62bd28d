/**
 * The S3 provider: a datastore under a prefix of an S3 bucket (AWS S3, or
 * any endpoint that honours conditional writes: MinIO, R2, …).
 *
 * Layout under PREFIX (see design/s3.md):
 * ```
 * modelsync.json                  {"format": 1}, created with If-None-Match: *
 * blobs/AB/SHA256                 immutable content, created with If-None-Match: *
 * manifests/TYPE/ID.json          one object per model, replaced with If-Match: ETag
 * locks/global.json, locks/models/TYPE/ID.json
 * ```
 *
 * @example
 * ```ts ignore
 * import { S3Provider } from "./provider.ts";
 * const p = new S3Provider({ bucket: "models", prefix: "team" }, {
 *   callTimeoutMs: 30_000, host: "h", pid: 1, skewMarginMs: 5_000, baseDir: "/",
 * });
 * console.log(p.describe()); // { type: "s3", location: "s3://models/team" }
 * ```
 * @module
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { CorruptError, DatastoreError, NotFoundError } from "../../errors.ts";
import type { Manifest } from "../../model/manifest.ts";
import { formatRef, type ModelRef } from "../../model/ref.ts";
import type {
  BlobSource,
  CallOptions,
  Capabilities,
  LockHandle,
  LockInfo,
  LockKey,
  ManifestListing,
  ProbeCheck,
  Provider,
  ProviderContext,
  StoredManifest,
} from "../../provider/contract.ts";
import { DATASTORE_FORMAT } from "../../provider/contract.ts";
import { type BlobArea, S3BlobStore } from "./blobs.ts";
import {
  isAccessDenied,
  isNoSuchKey,
  isPreconditionFailed,
  makeClient,
  s3Fail,
  type S3Handle,
} from "./client.ts";
import {
  describeLocation,
  redactEndpoint,
  type ResolvedS3Config,
  resolveS3Config,
  type S3Config,
} from "./config.ts";
import { S3LockStore } from "./locks.ts";
import { S3ManifestStore } from "./manifests.ts";
import { runProbe } from "./probe.ts";

/** Name of the datastore marker object. */
export const MARKER = "modelsync.json";
/** The datastore format this code reads and writes. */
export const FORMAT = DATASTORE_FORMAT;
/** Transfers at once. */
export const MAX_CONCURRENCY = 16;

/**
 * Whether the endpoint honours conditional writes, as found by `open()`:
 * `unchecked` before, `yes` (a repeated create-if-absent was refused),
 * `no` (it was accepted: locks and commits are refused), `unknown` (the
 * check was denied, e.g. read-only credentials: capabilities all false).
 */
export type ConditionalWrites = "unchecked" | "yes" | "no" | "unknown";

/** Test hooks. */
export interface S3ProviderOptions {
  /** Environment for endpoint and region (default `Deno.env`). */
  env?: Record<string, string | undefined>;
  /** The local clock written into lock records (default `Date.now`). */
  now?: () => number;
  /** Called with the SDK client once it is made (tests add middleware). */
  configureClient?: (client: S3Client) => void;
}

/** A datastore under an S3 prefix. */
export class S3Provider implements Provider {
  readonly type = "s3";
  readonly #cfg: ResolvedS3Config;
  readonly #ctx: ProviderContext;
  readonly #s3: S3Handle;
  readonly #area: BlobArea;
  readonly #blobs: S3BlobStore;
  readonly #manifests: S3ManifestStore;
  readonly #locks: S3LockStore;
  readonly #now: () => number;
  #conditional: ConditionalWrites = "unchecked";

  constructor(config: S3Config, context: ProviderContext, opts: S3ProviderOptions = {}) {
    this.#cfg = resolveS3Config(config, opts.env);
    this.#ctx = context;
    this.#now = opts.now ?? Date.now;
    this.#s3 = makeClient(this.#cfg, { callTimeoutMs: context.callTimeoutMs });
    opts.configureClient?.(this.#s3.client);
    this.#area = this.#makeArea(this.#cfg.prefix);
    this.#blobs = new S3BlobStore(this.#area);
    this.#manifests = new S3ManifestStore(this.#area);
    this.#locks = new S3LockStore(this.#area, {
      host: context.host,
      pid: context.pid,
      skewMarginMs: context.skewMarginMs,
      now: this.#now,
      assertSafe: (what) => this.#assertSafe(what),
    });
  }

  /** Requests sent so far by this provider (tests and benchmarks). */
  get requestCount(): number {
    return this.#s3.requests.count;
  }

  /** What `open()` found about conditional writes. */
  get conditionalWrites(): ConditionalWrites {
    return this.#conditional;
  }

  #makeArea(prefix: string): BlobArea {
    const where = describeLocation(this.#cfg);
    const bucket = this.#cfg.bucket;
    return {
      s3: this.#s3,
      bucket,
      key: (rel) => (prefix === "" ? rel : `${prefix}/${rel}`),
      fail: (what) => ({ where, bucket, what }),
      timeoutFor: (bytes) => this.#ctx.callTimeoutMs + Math.ceil(bytes / (1024 * 1024)) * 1_000,
    };
  }

  hasBlobs(hashes: string[], opts: CallOptions = {}): Promise<Set<string>> {
    return this.#blobs.has(hashes, this.#signal(opts));
  }

  putBlob(hash: string, source: BlobSource, opts: CallOptions = {}): Promise<void> {
    return this.#blobs.put(hash, source, this.#signal(opts));
  }

  getBlob(hash: string, opts: CallOptions = {}): Promise<ReadableStream<Uint8Array>> {
    return this.#blobs.get(hash, this.#signal(opts));
  }

  listManifests(opts: CallOptions = {}): Promise<ManifestListing[]> {
    return this.#manifests.list(this.#signal(opts));
  }

  getManifest(model: ModelRef, opts: CallOptions = {}): Promise<StoredManifest | null> {
    return this.#manifests.get(model, this.#signal(opts));
  }

  async commitManifest(
    model: ModelRef,
    expectedGeneration: number,
    manifest: Manifest,
    opts: CallOptions = {},
  ): Promise<{ version: string }> {
    this.#assertSafe(`commit ${formatRef(model)}`);
    return await this.#manifests.commit(model, expectedGeneration, manifest, this.#signal(opts));
  }

  lock(key: LockKey): LockHandle {
    return this.#locks.handle(key);
  }

  listLocks(opts: CallOptions = {}): Promise<LockInfo[]> {
    return this.#locks.list({ signal: this.#signal(opts) });
  }

  describe(): { type: string; location: string } {
    return { type: this.type, location: describeLocation(this.#cfg) };
  }

  capabilities(): Capabilities {
    const none = { scopedSync: false, atomicCommit: false, serverTime: false, maxConcurrency: 16 };
    if (this.#conditional === "no") {
      return {
        ...none,
        limitation: `The s3 datastore ${describeLocation(this.#cfg)} ignores conditional ` +
          `writes (If-None-Match): locks and commits are refused on it; reads still work. Use ` +
          `an endpoint that supports conditional writes (AWS S3, MinIO, Cloudflare R2).`,
      };
    }
    if (this.#conditional === "unknown") {
      return {
        ...none,
        limitation: `Could not check that the s3 datastore ${describeLocation(this.#cfg)} ` +
          `honours conditional writes: the credentials may not write there. Reads work; ` +
          `"pull --no-lock" needs no write access.`,
      };
    }
    return { scopedSync: true, atomicCommit: true, serverTime: true, maxConcurrency: 16 };
  }

  /**
   * Reads the marker (GET), then repeats its creation with
   * `If-None-Match: *` (PUT of the same bytes): a 412 proves the endpoint
   * honours conditional writes. Two requests.
   */
  async open(opts: CallOptions = {}): Promise<void> {
    const signal = this.#signal(opts);
    const body = await this.#readMarker(signal);
    await this.#checkConditional(body, signal);
  }

  async init(opts: CallOptions = {}): Promise<void> {
    const signal = this.#signal(opts);
    const bytes = new TextEncoder().encode(JSON.stringify({ format: FORMAT }) + "\n");
    try {
      await this.#s3.client.send(
        new PutObjectCommand({
          Bucket: this.#cfg.bucket,
          Key: this.#area.key(MARKER),
          Body: bytes,
          ContentType: "application/json",
          IfNoneMatch: "*",
        }),
        { abortSignal: signal },
      );
    } catch (err) {
      if (!isPreconditionFailed(err)) throw s3Fail(err, this.#area.fail("create the marker"));
    }
    // Already there is fine when it is a modelsync marker; says whether
    // conditional writes hold, so init warns about a store that ignores them.
    await this.open({ signal });
  }

  probe(opts: CallOptions = {}): Promise<ProbeCheck[]> {
    const rand = crypto.getRandomValues(new Uint8Array(6));
    const id = Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("");
    const dir = `.probe/${this.#ctx.pid}-${id}`;
    const base = this.#cfg.prefix === "" ? dir : `${this.#cfg.prefix}/${dir}`;
    return runProbe(this.#makeArea(base), {
      host: this.#ctx.host,
      pid: this.#ctx.pid,
      signal: this.#signal(opts),
    });
  }

  close(): Promise<void> {
    this.#s3.client.destroy();
    return Promise.resolve();
  }

  #signal(opts: CallOptions): AbortSignal | undefined {
    const a = opts.signal;
    const b = this.#ctx.signal;
    if (a === undefined) return b;
    if (b === undefined) return a;
    return AbortSignal.any([a, b]);
  }

  async #readMarker(signal?: AbortSignal): Promise<Uint8Array> {
    const where = describeLocation(this.#cfg);
    let bytes: Uint8Array;
    try {
      const out = await this.#s3.client.send(
        new GetObjectCommand({ Bucket: this.#cfg.bucket, Key: this.#area.key(MARKER) }),
        { abortSignal: signal },
      );
      bytes = (await out.Body?.transformToByteArray()) ?? new Uint8Array();
    } catch (err) {
      if (isNoSuchKey(err)) {
        throw new NotFoundError(
          `Datastore ${where} is not initialised (no ${MARKER}): run ` +
            `"modelsync init --datastore ${this.#spec()}".`,
        );
      }
      throw s3Fail(err, this.#area.fail(`read the marker ${MARKER}`));
    }
    let format: unknown;
    try {
      format = (JSON.parse(new TextDecoder().decode(bytes)) as { format?: unknown } | null)?.format;
    } catch (err) {
      throw new CorruptError(
        `Datastore marker ${MARKER} in ${where} is not valid JSON: restore it as {"format": 1}.`,
        { cause: err },
      );
    }
    if (format === FORMAT) return bytes;
    if (typeof format === "number" && Number.isInteger(format) && format > FORMAT) {
      throw new DatastoreError(
        `Datastore ${where} uses format ${format}, newer than this modelsync reads (1): ` +
          `upgrade modelsync.`,
      );
    }
    throw new CorruptError(
      `Datastore marker ${MARKER} in ${where} is garbled (format ${
        JSON.stringify(format)
      }): restore it as {"format": 1}.`,
    );
  }

  async #checkConditional(marker: Uint8Array, signal?: AbortSignal): Promise<void> {
    try {
      await this.#s3.client.send(
        new PutObjectCommand({
          Bucket: this.#cfg.bucket,
          Key: this.#area.key(MARKER),
          Body: marker,
          ContentType: "application/json",
          IfNoneMatch: "*",
        }),
        { abortSignal: signal },
      );
      this.#conditional = "no";
    } catch (err) {
      if (isPreconditionFailed(err)) {
        this.#conditional = "yes";
      } else if (isAccessDenied(err)) {
        // Read-only credentials: reads must keep working; nothing declared.
        this.#conditional = "unknown";
      } else {
        throw s3Fail(err, this.#area.fail("check conditional writes"));
      }
    }
  }

  #assertSafe(what: string): void {
    if (this.#conditional !== "no") return;
    throw new DatastoreError(
      `Cannot ${what}: the s3 datastore ${describeLocation(this.#cfg)} ignores conditional ` +
        `writes (If-None-Match/If-Match), so no lock or commit on it can be safe. Use an ` +
        `endpoint that supports them (AWS S3, MinIO, Cloudflare R2); ` +
        `"modelsync pull --no-lock" still reads.`,
      { retryable: false },
    );
  }

  #spec(): string {
    const c = this.#cfg;
    const endpoint = c.endpoint === undefined ? "" : `?endpoint=${redactEndpoint(c.endpoint)}`;
    return `s3://${c.bucket}${c.prefix === "" ? "" : `/${c.prefix}`}${endpoint}`;
  }
}
