/**
 * The `azure` provider module (design/azure.md). Loaded by the registry with
 * `import()`, so the Azure SDK loads only when an azure datastore is used.
 *
 * @module
 */
import type { ProviderModule } from "../../provider/contract.ts";
import { type AzureConfig, azureConfigSchema, parseAzureSpec } from "./config.ts";
import { AzureProvider } from "./provider.ts";

/** The azure provider module. */
export const azureProvider: ProviderModule<AzureConfig> = {
  type: "azure",
  configSchema: azureConfigSchema,
  parseSpec: (spec) => parseAzureSpec(spec),
  create: (config, context) => new AzureProvider(config, context),
};

export { type AzureConfig, azureConfigSchema } from "./config.ts";
export { AzureProvider } from "./provider.ts";
