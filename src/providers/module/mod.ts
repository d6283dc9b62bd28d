/**
 * The `module` provider: a third party's provider module, loaded lazily.
 *
 * ```yaml
 * datastore:
 *   type: module
 *   module: ./providers/mystore.ts   # or npm:some-package, or a file:// URL
 *   config: { url: "..." }           # validated by the module's configSchema
 * ```
 *
 * The module exports a {@linkcode ProviderModule} as its default export or
 * as `provider`. It is imported only when a command opens the datastore.
 * A relative path is relative to the repository; `module:./x.ts` works as a
 * datastore spec too (with an empty `config`).
 *
 * Every problem with the module itself (it cannot be imported, exports no
 * provider, its config fails its schema, its `create` throws) is a one-line
 * usage error (exit 2) naming the module. The provider it creates is wrapped
 * so that its errors reach modelsync as modelsync's own: an error of another
 * copy of `@modelsync/cli` (a module that bundles its own) is matched by its
 * `code`, and any other error becomes a `DatastoreError` (exit 6) naming the
 * module and the call.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { z } from "zod";
import {
  ConflictError,
  ContentChangedError,
  CorruptError,
  DatastoreError,
  LeaseLostError,
  ModelsyncError,
  NotFoundError,
  UsageError,
} from "../../errors.ts";
import type {
  BlobListing,
  BlobSource,
  CallOptions,
  Capabilities,
  GetBlobOptions,
  HasBlobsOptions,
  ListOptions,
  Page,
  Provider,
  ProviderContext,
  ProviderModule,
  RecordListing,
  StoredRecord,
} from "../../provider/contract.ts";
import { configProblem } from "../mod.ts";

/** Configuration of the module provider. */
export interface ModuleConfig {
  /** `./path.ts` (relative to the repository), an absolute path, `npm:pkg` or a URL. */
  module: string;
  /** The module's own configuration. */
  config: Record<string, unknown>;
}

/** Validates the `datastore:` block (without `type`). */
export const moduleConfigSchema: z.ZodType<ModuleConfig> = z.object({
  module: z.string().min(1),
  config: z.record(z.string(), z.unknown()).default({}),
}).strict() as unknown as z.ZodType<ModuleConfig>;

/** The import specifier of a module named in the config. */
export function moduleSpecifier(module: string, baseDir: string): string {
  if (/^(npm|jsr|https?|file):/i.test(module)) return module;
  return pathToFileURL(isAbsolute(module) ? module : resolve(baseDir, module)).href;
}

function isProviderModule(v: unknown): v is ProviderModule<unknown> {
  const m = v as Partial<ProviderModule<unknown>> | null;
  return typeof m === "object" && m !== null && typeof m.type === "string" &&
    typeof m.create === "function" && typeof m.configSchema?.safeParse === "function";
}

/** The first line of an error's message. */
function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split("\n")[0].trim().replace(/\.$/, "");
}

/** Imports the module and finds its provider export; UsageError naming the module otherwise. */
export async function loadExternalModule(
  module: string,
  baseDir: string,
): Promise<ProviderModule<unknown>> {
  const spec = moduleSpecifier(module, baseDir);
  let ns: Record<string, unknown>;
  try {
    ns = await import(spec);
  } catch (err) {
    throw new UsageError(
      `Cannot load the provider module ${module}: ${firstLine(err)}. Check "datastore.module" ` +
        `in modelsync.yaml.`,
      { cause: err },
    );
  }
  const found = [ns.default, ns.provider].find(isProviderModule);
  if (found === undefined) {
    throw new UsageError(
      `The provider module ${module} exports no provider: export a ProviderModule ` +
        `({ type, configSchema, create }) as its default export or as "provider".`,
    );
  }
  return found;
}

/** Validates the module's `config` with its own schema; UsageError naming module and field. */
function parseModuleConfig(
  module: string,
  mod: ProviderModule<unknown>,
  config: Record<string, unknown>,
): unknown {
  const where = `Invalid datastore config for the provider module ${module}`;
  let parsed: ReturnType<z.ZodType["safeParse"]>;
  try {
    parsed = mod.configSchema.safeParse(config);
  } catch (err) {
    throw new UsageError(`${where}: its configSchema threw (${firstLine(err)}).`, { cause: err });
  }
  if (parsed.success) return parsed.data;
  const problem = configProblem(parsed.error, config)
    .replace(/^"([^"]*)"/, (_, key) => `"config.${key}"`)
    .replace(/^unknown key(s?) /, "unknown key$1 in config: ");
  throw new UsageError(`${where}: ${problem}. Fix "datastore.config" in modelsync.yaml.`);
}

/** The module provider module. */
export const moduleProvider: ProviderModule<ModuleConfig> = {
  type: "module",
  configSchema: moduleConfigSchema,
  parseSpec(spec, ctx) {
    const path = spec.replace(/^module:/i, "");
    if (path.trim() === "") {
      throw new UsageError(`Invalid datastore ${JSON.stringify(spec)}: it names no module file.`);
    }
    return { module: moduleSpecifier(path, ctx.baseDir), config: {} };
  },
  async create(config, context: ProviderContext): Promise<Provider> {
    const mod = await loadExternalModule(config.module, context.baseDir);
    const parsed = parseModuleConfig(config.module, mod, config.config);
    let provider: Provider;
    try {
      provider = await mod.create(parsed, context);
    } catch (err) {
      throw new UsageError(
        `The provider module ${config.module} failed to create its provider: ${
          firstLine(err)
        }. Check "datastore.config" in modelsync.yaml.`,
        { cause: err },
      );
    }
    if (provider === null || typeof provider !== "object") {
      throw new UsageError(
        `The provider module ${config.module} returned no provider from create(): return an ` +
          `object with the Provider methods.`,
      );
    }
    return new ModuleProvider(provider, config.module);
  },
};

/** A code of `ModelsyncError` and the class that has it. */
const ERRORS_BY_CODE: Record<string, (message: string, cause: unknown) => ModelsyncError> = {
  "usage": (m, cause) => new UsageError(m, { cause }),
  "not-found": (m, cause) => new NotFoundError(m, { cause }),
  "conflict": (m, cause) => new ConflictError(m, { cause }),
  "content-changed": (m, cause) => new ContentChangedError(m, { cause }),
  "corrupt": (m, cause) => new CorruptError(m, { cause }),
  "lease-lost": (m, cause) => new LeaseLostError(m, { cause }),
};

/** A module provider's error as modelsync's own. */
export function adoptError(err: unknown, module: string, op: string): unknown {
  if (err instanceof ModelsyncError) return err;
  const e = err as { code?: unknown; exitCode?: unknown; retryable?: unknown } | null;
  const message = String((err as Error)?.message ?? err);
  if (typeof e?.code === "string" && typeof e.exitCode === "number") {
    // Another copy of @modelsync/cli's errors: same code, our class.
    if (e.code === "datastore") {
      return new DatastoreError(message, { retryable: e.retryable === true, cause: err });
    }
    const make = ERRORS_BY_CODE[e.code];
    if (make !== undefined) return make(message, err);
  }
  // An abort passes through as it is: the caller knows why it aborted.
  if ((err as Error)?.name === "AbortError" || (err as Error)?.name === "TimeoutError") return err;
  return new DatastoreError(
    `The provider module ${module} failed ${op}: ${firstLine(err)}.`,
    { cause: err },
  );
}

/** A module's provider, its errors adopted; capabilities() stays missing when it is. */
class ModuleProvider implements Provider {
  readonly type: string;
  readonly #inner: Provider;
  readonly #module: string;
  capabilities?: () => Capabilities;

  constructor(inner: Provider, module: string) {
    this.#inner = inner;
    this.#module = module;
    this.type = typeof inner.type === "string" && inner.type !== "" ? inner.type : "module";
    if (typeof inner.capabilities === "function") {
      this.capabilities = () => inner.capabilities!();
    }
  }

  async #call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw adoptError(err, this.#module, op);
    }
  }

  hasBlobs(hashes: string[], opts?: HasBlobsOptions): Promise<Set<string>> {
    return this.#call("hasBlobs", () => this.#inner.hasBlobs(hashes, opts));
  }
  putBlob(hash: string, source: BlobSource, opts?: CallOptions): Promise<void> {
    return this.#call("putBlob", () => this.#inner.putBlob(hash, source, opts));
  }
  getBlob(hash: string, opts?: GetBlobOptions): Promise<ReadableStream<Uint8Array>> {
    return this.#call("getBlob", () => this.#inner.getBlob(hash, opts));
  }
  listBlobs(opts?: ListOptions): Promise<Page<BlobListing>> {
    return this.#call("listBlobs", () => this.#inner.listBlobs(opts));
  }
  deleteBlob(hash: string, opts?: CallOptions): Promise<void> {
    return this.#call("deleteBlob", () => this.#inner.deleteBlob(hash, opts));
  }
  getRecord(key: string, opts?: CallOptions): Promise<StoredRecord | null> {
    return this.#call("getRecord", () => this.#inner.getRecord(key, opts));
  }
  createRecord(key: string, bytes: Uint8Array, opts?: CallOptions): Promise<string | null> {
    return this.#call("createRecord", () => this.#inner.createRecord(key, bytes, opts));
  }
  replaceRecord(
    key: string,
    bytes: Uint8Array,
    version: string,
    opts?: CallOptions,
  ): Promise<string | null> {
    return this.#call(
      "replaceRecord",
      () => this.#inner.replaceRecord(key, bytes, version, opts),
    );
  }
  deleteRecord(key: string, version: string, opts?: CallOptions): Promise<boolean> {
    return this.#call("deleteRecord", () => this.#inner.deleteRecord(key, version, opts));
  }
  listRecords(prefix: string, opts?: ListOptions): Promise<Page<RecordListing>> {
    return this.#call("listRecords", () => this.#inner.listRecords(prefix, opts));
  }
  describe(): { type: string; location: string } {
    try {
      const d = this.#inner.describe();
      return { type: String(d.type), location: String(d.location) };
    } catch {
      return { type: this.type, location: this.#module };
    }
  }
  open(opts?: CallOptions): Promise<void> {
    return this.#call("open", () => this.#inner.open(opts));
  }
  init(opts?: CallOptions): Promise<void> {
    return this.#call("init", () => this.#inner.init(opts));
  }
  close(): Promise<void> {
    return this.#call("close", () => this.#inner.close());
  }
}
