/**
 * The shared end-to-end suite (tests/_provider_suite.ts) on an Azure
 * datastore: a fresh container on Azurite per test.
 */
import { AzureSandbox, azureTestOptions } from "./_azure.ts";
import { providerSuite } from "./_provider_suite.ts";

providerSuite({
  name: "Azure (Azurite)",
  testOptions: azureTestOptions,
  async create(hint) {
    const az = await AzureSandbox.create(`suite-${hint}`);
    return { sb: az.sb, dispose: () => az.dispose() };
  },
});
