/**
 * The `s3` provider module (design/s3.md). Loaded by the registry with
 * `import()`, so the AWS SDK loads only when an s3 datastore is used.
 *
 * @module
 */
import type { ProviderModule } from "../../provider/contract.ts";
import { parseS3Spec, type S3Config, s3ConfigSchema } from "./config.ts";
import { S3Provider } from "./provider.ts";

/** The s3 provider module. */
export const s3Provider: ProviderModule<S3Config> = {
  type: "s3",
  configSchema: s3ConfigSchema,
  parseSpec: (spec) => parseS3Spec(spec),
  create: (config, context) => new S3Provider(config, context),
};

export { type S3Config, s3ConfigSchema } from "./config.ts";
export { S3Provider } from "./provider.ts";
