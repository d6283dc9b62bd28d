/**
 * The `filesystem` provider module: a datastore in a directory.
 *
 * @example
 * ```ts
 * import { filesystemProvider } from "./mod.ts";
 * const p = await filesystemProvider.create({ path: "store" }, {
 *   callTimeoutMs: 30_000, host: "h", pid: 1, skewMarginMs: 2_000, baseDir: "/tmp",
 * });
 * console.log(p.describe().location); // /tmp/store
 * ```
 * @module
 */
import { resolve } from "node:path";
import { z } from "zod";
import type { ProviderModule } from "../../provider/contract.ts";
import { FilesystemProvider } from "./provider.ts";

/** Configuration of the filesystem provider. */
export interface FilesystemConfig {
  /** The datastore directory: absolute, or relative to the repository. */
  path: string;
}

/** Validates the `datastore:` block (without `type`). */
export const filesystemConfigSchema: z.ZodType<FilesystemConfig> = z.object({
  path: z.string().min(1),
}).strict();

/** The filesystem provider module. */
export const filesystemProvider: ProviderModule<FilesystemConfig> = {
  type: "filesystem",
  configSchema: filesystemConfigSchema,
  create(config, context) {
    return new FilesystemProvider(resolve(context.baseDir, config.path), context);
  },
};

export { FilesystemProvider } from "./provider.ts";
