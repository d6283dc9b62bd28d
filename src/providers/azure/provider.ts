/**
 * The Azure Blob Storage provider: a datastore under a prefix of a blob
 * container (Azure, or Azurite). Blobs are `./blobs.ts`; a record `K` is the
 * block blob `PREFIX/K`, changed only by `If-None-Match: *` and
 * `If-Match: ETag`, its version the ETag, which Azure changes on every write
 * (design/azure.md, "Records").
 *
 * @example
 * ```ts ignore
 * import { AzureProvider } from "./provider.ts";
 * const p = new AzureProvider({ container: "models", prefix: "team" }, {
 *   callTimeoutMs: 30_000, host: "h", pid: 1, baseDir: "/",
 * }, { env: { AZURE_STORAGE_CONNECTION_STRING: "UseDevelopmentStorage=true" } });
 * console.log(p.describe().location); // azure://models/team (endpoint http://127.0.0.1:10000/devstoreaccount1)
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import { DatastoreError } from "../../errors.ts";
import type * as C from "../../provider/contract.ts";
import { AzureBlobs, type BlobTuning } from "./blobs.ts";
import { AzureStore, isExisting, isStale, noBlob, unquote } from "./client.ts";
import { type AzureConfig, resolveAzureConfig } from "./config.ts";

/** Options for tests; none is a user setting. */
export interface AzureProviderOptions extends BlobTuning {
  /** Environment for account, credentials and endpoint (default `Deno.env`). */
  env?: Record<string, string | undefined>;
  /** Names per listing page (default 5,000, Azure's most). */
  pageSize?: number;
}

const SEGMENT = String.raw`(?!\.\.?(?:/|$))[A-Za-z0-9._@-]+`;
const RECORD_KEY = new RegExp(`^(?!blobs/)${SEGMENT}(?:/${SEGMENT})*$`);

/** A datastore under an Azure blob container prefix. */
export class AzureProvider extends AzureBlobs implements C.Provider {
  readonly type = "azure";

  constructor(config: AzureConfig, context: C.ProviderContext, opts: AzureProviderOptions = {}) {
    const store = new AzureStore(resolveAzureConfig(config, opts.env), {
      callTimeoutMs: context.callTimeoutMs,
      pageSize: opts.pageSize,
    });
    super(store, opts);
  }

  async getRecord(key: string, opts: C.CallOptions = {}): Promise<C.StoredRecord | null> {
    const client = this.#blob(key);
    return await this.az.run(`read record ${key}`, async (abortSignal) => {
      const out = await client.download(0, undefined, { abortSignal, maxRetryRequests: 0 });
      const chunks: Uint8Array[] = [];
      for await (const chunk of out.readableStreamBody ?? []) chunks.push(chunk as Uint8Array);
      return {
        bytes: new Uint8Array(Buffer.concat(chunks)),
        version: unquote(out.etag),
        ...(out.lastModified && { modifiedMs: out.lastModified.getTime() }),
        ...(out.date && { storeNowMs: out.date.getTime() }),
      };
    }, { signal: opts.signal, expect: noBlob(null) });
  }

  createRecord(key: string, bytes: Uint8Array, opts: C.CallOptions = {}) {
    return this.#put(key, bytes, { ifNoneMatch: "*" }, opts, isExisting);
  }

  replaceRecord(key: string, bytes: Uint8Array, version: string, opts: C.CallOptions = {}) {
    return this.#put(key, bytes, { ifMatch: `"${version}"` }, opts, isStale);
  }

  async deleteRecord(key: string, version: string, opts: C.CallOptions = {}): Promise<boolean> {
    const client = this.#blob(key);
    const out = await this.az.run(
      `delete record ${key}`,
      (abortSignal) => client.delete({ abortSignal, conditions: { ifMatch: `"${version}"` } }),
      { signal: opts.signal, expect: (e) => (isStale(e) ? null : undefined) },
    );
    return out !== null;
  }

  /**
   * One List Blobs page of the records under `prefix`; names under `blobs/`
   * are no records (a page holding only those reads on).
   */
  async listRecords(prefix: string, opts: C.ListOptions = {}): Promise<C.Page<C.RecordListing>> {
    if (prefix.startsWith("blobs/")) return { items: [] };
    for (let marker = opts.cursor;;) {
      const got = await this.az.list(prefix, marker, opts.signal);
      const items = got.objects.flatMap(({ rel, etag, modifiedMs }) =>
        rel.startsWith("blobs/") || rel.endsWith("/")
          ? []
          : [{ key: rel, version: etag, modifiedMs }]
      );
      marker = got.more;
      if (marker === undefined || items.length > 0) return { items, cursor: marker };
    }
  }

  describe(): { type: string; location: string } {
    return { type: this.type, location: this.az.where };
  }

  capabilities(): C.Capabilities {
    return {
      scopedSync: true,
      atomicCommit: true,
      serverTime: true,
      clockResolutionMs: 1_000,
      rangedReads: true,
      maxConcurrency: 16,
    };
  }

  /**
   * Sends nothing: the marker read that follows is the first request, and a
   * missing container fails it with `NotFoundError` naming the container.
   */
  open(opts: C.CallOptions = {}): Promise<void> {
    opts.signal?.throwIfAborted();
    return Promise.resolve();
  }

  /** Containers are never created here; the marker write finds a missing one. */
  init(opts: C.CallOptions = {}): Promise<void> {
    return this.open(opts);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** A conditional Put Blob of a record: the new ETag, or null when the condition failed. */
  async #put(
    key: string,
    bytes: Uint8Array,
    conditions: { ifNoneMatch: "*" } | { ifMatch: string },
    opts: C.CallOptions,
    lost: (err: unknown) => boolean,
  ): Promise<string | null> {
    const client = this.#blob(key);
    const out = await this.az.run(
      `write record ${key}`,
      (abortSignal) => client.upload(bytes, bytes.length, { abortSignal, conditions }),
      { signal: opts.signal, expect: (e) => (lost(e) ? null : undefined) },
    );
    if (out === null || out.etag) return out && unquote(out.etag);
    throw new DatastoreError(
      `The azure datastore ${this.az.where} answered a write of ${key} without an ETag: use ` +
        `Azure Blob Storage or Azurite, which version every write.`,
    );
  }

  #blob(key: string) {
    if (!RECORD_KEY.test(key)) throw new Error(`Invalid record key ${JSON.stringify(key)}.`);
    return this.az.blob(key);
  }
}
