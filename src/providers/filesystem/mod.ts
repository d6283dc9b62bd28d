/**
 * The `filesystem` provider module: a datastore in a directory.
 *
 * @example
 * ```ts
 * import { filesystemProvider } from "./mod.ts";
 * const p = await filesystemProvider.create({ path: "store" }, {
 *   callTimeoutMs: 30_000, host: "h", pid: 1, baseDir: "/tmp",
 * });
 * console.log(p.describe().location); // /tmp/store
 * ```
 * @module
 */
import { z } from "zod";
import { UsageError } from "../../errors.ts";
import type { ProviderModule } from "../../provider/contract.ts";
import { localPath } from "../../repo/datastore_spec.ts";
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

/**
 * `filesystem:PATH`, `fs:PATH`, `file:///PATH` or a bare path; relative
 * paths against the repository, `~/` against the home directory.
 */
export function parseFilesystemSpec(spec: string, ctx: { baseDir: string }): FilesystemConfig {
  const bad = (why: string) =>
    new UsageError(`Invalid datastore ${JSON.stringify(spec)}: ${why}. Use filesystem:/path.`);
  if (/^file:/i.test(spec)) {
    let url: URL;
    try {
      url = new URL(spec);
    } catch {
      throw bad("it is not a valid file:// URL");
    }
    if (url.host !== "" && url.host !== "localhost") throw bad("a file:// URL cannot name a host");
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      throw bad("it is not a valid file:// URL (a malformed %-escape)");
    }
    if (path.includes("\0")) throw bad("it is not a valid file:// URL (its path holds a NUL)");
    return { path };
  }
  const m = /^(filesystem|fs):(.*)$/i.exec(spec);
  const path = m === null ? spec : m[2];
  if (path.trim() === "") throw bad("it names no path");
  return { path: localPath(path, ctx.baseDir) };
}

/** The filesystem provider module. */
export const filesystemProvider: ProviderModule<FilesystemConfig> = {
  type: "filesystem",
  configSchema: filesystemConfigSchema,
  parseSpec: (spec, ctx) => ({ ...parseFilesystemSpec(spec, ctx) }),
  create(config, context) {
    return new FilesystemProvider(localPath(config.path, context.baseDir), context);
  },
};

export { FilesystemProvider } from "./provider.ts";
