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
 * as `provider`. Errors name the module and the field.
 *
 * @module
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { z } from "zod";
import { UsageError } from "../../errors.ts";
import type { Provider, ProviderContext, ProviderModule } from "../../provider/contract.ts";
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
    const why = String((err as Error)?.message ?? err).split("\n")[0];
    throw new UsageError(
      `Cannot load the provider module ${module}: ${why}. Check the "module" path in ` +
        `modelsync.yaml.`,
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
    const parsed = mod.configSchema.safeParse(config.config);
    if (!parsed.success) {
      throw new UsageError(
        `Invalid config for the provider module ${config.module} (type ${mod.type}): ` +
          `${configProblem(parsed.error, config.config)}.`,
      );
    }
    return await mod.create(parsed.data, context);
  },
};
