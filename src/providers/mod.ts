/**
 * The provider registry: a table of datastore types and lazy imports of
 * their modules, so only the provider in use is loaded. Each module parses
 * its own spec form and describes its own location.
 *
 * @example
 * ```ts
 * import { createProvider } from "./mod.ts";
 * const p = await createProvider({ type: "filesystem", path: "/tmp/store" }, {
 *   callTimeoutMs: 30_000, host: "h", pid: 1, baseDir: "/",
 * });
 * console.log(p.describe()); // { type: "filesystem", location: "/tmp/store" }
 * ```
 * @module
 */
import type { z } from "zod";
import { UsageError } from "../errors.ts";
import type { Provider, ProviderContext, ProviderModule } from "../provider/contract.ts";
import { guardProvider } from "../provider/guard.ts";
import { redactSpec } from "../repo/datastore_spec.ts";

type Load = () => Promise<ProviderModule<unknown>>;

/** Every datastore type this version can open, and how to load it. */
const REGISTRY: Record<string, Load> = {
  filesystem: async () => (await import("./filesystem/mod.ts")).filesystemProvider as never,
  s3: async () => (await import("./s3/mod.ts")).s3Provider as never,
  postgres: async () => (await import("./postgres/mod.ts")).postgresProvider as never,
  azure: async () => (await import("./azure/mod.ts")).azureProvider as never,
  module: async () => (await import("./module/mod.ts")).moduleProvider as never,
};

/** Every datastore type this version can open. */
export const PROVIDER_TYPES: readonly string[] = Object.keys(REGISTRY);

/** Types named in the spec that a later version provides. */
const NOT_YET = new Set<string>();

/** The datastore types this version can open that a hint may offer (not `module`). */
export const AVAILABLE_PROVIDER_TYPES: readonly string[] = PROVIDER_TYPES.filter((t) =>
  t !== "module"
);

/** Loads the provider module of a datastore type; UsageError for an unknown one. */
export async function loadProviderModule(type: string): Promise<ProviderModule<unknown>> {
  const load = REGISTRY[type];
  if (load !== undefined) return await load();
  if (NOT_YET.has(type)) {
    throw new UsageError(
      `Datastore type ${type} is not available in this version of modelsync; use ` +
        `${AVAILABLE_PROVIDER_TYPES.join(" or ")}.`,
    );
  }
  throw new UsageError(
    `Unknown datastore type ${JSON.stringify(type)}: use one of ` +
      `${AVAILABLE_PROVIDER_TYPES.join(", ")}, or type module for a provider module.`,
  );
}

/** Turns the first zod issue into one line naming the key. */
export function configProblem(error: z.ZodError, config: Record<string, unknown>): string {
  const issue = error.issues[0];
  if (issue === undefined) return "it is invalid";
  if (issue.code === "unrecognized_keys") {
    const keys = issue.keys.map((k) => JSON.stringify(k)).join(", ");
    return `unknown key${issue.keys.length > 1 ? "s" : ""} ${keys}; remove ${
      issue.keys.length > 1 ? "them" : "it"
    }`;
  }
  const key = issue.path.map(String).join(".");
  if (key === "") return issue.message;
  const top = issue.path[0];
  if (issue.code === "invalid_type" && typeof top === "string" && !(top in config)) {
    return `"${key}" is required`;
  }
  return `"${key}": ${issue.message}`;
}

/** Options of {@linkcode createProvider}. */
export interface CreateOptions {
  /** Where the config came from, for messages: "modelsync.yaml" (default) or "--datastore". */
  origin?: string;
  /** Called once per datastore request by kind, e.g. "putBlob" (for `-v`). */
  onCall?: (op: string) => void;
}

/**
 * The provider config of a datastore: a spec string is parsed by its
 * module's `parseSpec`; a mapping is taken as is. Config errors are
 * UsageErrors (exit 2) naming where the datastore came from.
 */
export async function resolveDatastore(
  config: { type: string } & Record<string, unknown>,
  opts: Pick<CreateOptions, "origin"> = {},
): Promise<{ mod: ProviderModule<unknown>; config: unknown }> {
  const { type, spec, baseDir, ...rest } = config;
  const fromFile = opts.origin === undefined || opts.origin === "modelsync.yaml";
  let where = fromFile ? "datastore config in modelsync.yaml" : `datastore given by ${opts.origin}`;
  if (typeof type !== "string" || type === "") {
    throw new UsageError(
      `Invalid ${where}: "type" is required (one of ${PROVIDER_TYPES.join(", ")}).`,
    );
  }
  const mod = await loadProviderModule(type);
  let keys: Record<string, unknown> = rest;
  if (typeof spec === "string") {
    where = fromFile
      ? `datastore ${JSON.stringify(redactSpec(spec))} in modelsync.yaml`
      : `${opts.origin} ${JSON.stringify(redactSpec(spec))}`;
    if (mod.parseSpec === undefined) {
      throw new UsageError(
        `Invalid ${where}: the ${type} provider has no spec form; configure it as a mapping ` +
          `in modelsync.yaml (datastore: {type: ${type}, ...}).`,
      );
    }
    try {
      keys = mod.parseSpec(spec, { baseDir: typeof baseDir === "string" ? baseDir : Deno.cwd() });
    } catch (err) {
      // The module names the problem; say where the spec came from.
      if (err instanceof UsageError && !fromFile) {
        throw new UsageError(
          err.message.replace(/^Invalid datastore /, `Invalid ${opts.origin} `),
          { cause: err },
        );
      }
      throw err;
    }
  }
  const parsed = mod.configSchema.safeParse(keys);
  if (!parsed.success) {
    throw new UsageError(`Invalid ${where}: ${configProblem(parsed.error, keys)}.`);
  }
  return { mod, config: parsed.data };
}

/**
 * Loads the module for `config.type`, validates its config, and creates the
 * provider, wrapped so that every call has a deadline
 * (`context.callTimeoutMs`) and idempotent calls retry transient faults.
 */
export async function createProvider(
  config: { type: string } & Record<string, unknown>,
  context: ProviderContext,
  opts: CreateOptions = {},
): Promise<Provider> {
  const { mod, config: parsed } = await resolveDatastore(config, opts);
  // Every call to any datastore gets a deadline, and idempotent calls retry
  // transient faults, in this one place (src/provider/guard.ts).
  return guardProvider(await mod.create(parsed, context), {
    callTimeoutMs: context.callTimeoutMs,
    ...(opts.onCall ? { onCall: opts.onCall } : {}),
  });
}
