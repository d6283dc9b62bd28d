/**
 * The `s3` provider module: a datastore under a prefix of an S3 bucket.
 * Loaded by the registry with `import()`, so the AWS SDK loads only when an
 * s3 datastore is used.
 *
 * @example
 * ```ts ignore
 * import { s3Provider } from "./mod.ts";
 * const p = await s3Provider.create({ bucket: "models", prefix: "team" }, {
 *   callTimeoutMs: 30_000, host: "h", pid: 1, skewMarginMs: 5_000, baseDir: "/",
 * });
 * console.log(p.describe().location); // s3://models/team
 * ```
 * @module
 */
import type { ProviderModule } from "../../provider/contract.ts";
import { type S3Config, s3ConfigSchema } from "./config.ts";
import { S3Provider } from "./provider.ts";

/** The s3 provider module. */
export const s3Provider: ProviderModule<S3Config> = {
  type: "s3",
  configSchema: s3ConfigSchema,
  create(config, context) {
    return new S3Provider(config, context);
  },
};

export { type S3Config, s3ConfigSchema } from "./config.ts";
export { S3Provider } from "./provider.ts";
