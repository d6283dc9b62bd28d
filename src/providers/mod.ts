/**
 * The provider registry: maps a datastore type to its provider module,
 * loaded with `import()` so only the provider in use is loaded.
 *
 * @example
 * ```ts
 * import { createProvider } from "./mod.ts";
 * const p = await createProvider({ type: "filesystem", path: "/tmp/store" }, {
 *   callTimeoutMs: 30_000, host: "h", pid: 1, skewMarginMs: 2_000, baseDir: "/",
 * });
 * console.log(p.describe()); // { type: "filesystem", location: "/tmp/store" }
 * ```
 * @module
 */
import type { z } from "zod";
import { UsageError } from "../errors.ts";
import type { Provider, ProviderContext, ProviderModule } from "../provider/contract.ts";
import { guardProvider } from "../provider/guard.ts";

/** Every datastore type this version knows of (some may not be available yet). */
export const KNOWN_PROVIDER_TYPES: readonly string[] = ["filesystem", "s3", "postgres"];

/** Types named in the spec that a later version provides. */
const NOT_YET = new Set(["postgres"]);

/** The datastore types this version can open: the only ones a hint may offer. */
export const AVAILABLE_PROVIDER_TYPES: readonly string[] = KNOWN_PROVIDER_TYPES.filter((t) =>
  !NOT_YET.has(t)
);

/** Loads the provider module of a datastore type; UsageError for an unknown one. */
export async function loadProviderModule(type: string): Promise<ProviderModule<unknown>> {
  if (type === "filesystem") {
    const { filesystemProvider } = await import("./filesystem/mod.ts");
    return filesystemProvider as ProviderModule<unknown>;
  }
  if (type === "s3") {
    const { s3Provider } = await import("./s3/mod.ts");
    return s3Provider as ProviderModule<unknown>;
  }
  if (NOT_YET.has(type)) {
    throw new UsageError(
      `Datastore type ${type} is not available in this version of modelsync; use ` +
        `${AVAILABLE_PROVIDER_TYPES.join(" or ")}.`,
    );
  }
  throw new UsageError(
    `Unknown datastore type ${JSON.stringify(type)}: use one of ` +
      `${AVAILABLE_PROVIDER_TYPES.join(", ")}.`,
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
 * Loads the module for `config.type`, validates the rest of the config with
 * its schema, and creates the provider, wrapped so that every call has a
 * deadline (`context.callTimeoutMs`). Config errors are UsageErrors (exit 2)
 * naming where the config came from.
 */
export async function createProvider(
  config: { type: string } & Record<string, unknown>,
  context: ProviderContext,
  opts: CreateOptions = {},
): Promise<Provider> {
  const { type, ...rest } = config;
  const where = opts.origin === undefined || opts.origin === "modelsync.yaml"
    ? "datastore config in modelsync.yaml"
    : `datastore given by ${opts.origin}`;
  if (typeof type !== "string" || type === "") {
    throw new UsageError(
      `Invalid ${where}: "type" is required (one of ${AVAILABLE_PROVIDER_TYPES.join(", ")}).`,
    );
  }
  const mod = await loadProviderModule(type);
  const parsed = mod.configSchema.safeParse(rest);
  if (!parsed.success) {
    throw new UsageError(`Invalid ${where}: ${configProblem(parsed.error, rest)}.`);
  }
  // Every call to any datastore gets a deadline, and idempotent calls retry
  // transient faults, in this one place (src/provider/guard.ts).
  return guardProvider(await mod.create(parsed.data, context), {
    callTimeoutMs: context.callTimeoutMs,
    ...(opts.onCall ? { onCall: opts.onCall } : {}),
  });
}
