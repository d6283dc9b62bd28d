/**
 * A CI-sized stress run on Azure Blob Storage, Azurite (tests/_stress.ts);
 * skipped with a hint without the emulator, required in CI.
 */
import { ciStressRun } from "./_stress.ts";
import { azureTestOptions } from "./_azure.ts";

Deno.test({
  name: "stress, CI size, Azure: workload, crash trials and fencing hold every property",
  ...azureTestOptions(),
  fn: () =>
    ciStressRun({
      writers: 2,
      rounds: 3,
      models: 2,
      crashTrials: 4,
      fencing: 2,
      datastores: ["azure"],
    }),
});
