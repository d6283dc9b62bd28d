/**
 * A CI-sized stress run on S3, the local test server (tests/_stress.ts);
 * skipped with a hint without the server, required in CI.
 */
import { ciStressRun } from "./_stress.ts";
import { s3TestOptions } from "./_s3.ts";

Deno.test({
  name: "stress, CI size, S3: workload, crash trials and fencing hold every property",
  ...s3TestOptions(),
  fn: () =>
    ciStressRun({
      writers: 3,
      rounds: 4,
      models: 2,
      crashTrials: 6,
      fencing: 2,
      datastores: ["s3"],
    }),
});
