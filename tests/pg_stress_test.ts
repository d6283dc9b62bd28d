/**
 * A CI-sized stress run on PostgreSQL, the local test server
 * (tests/_stress.ts); skipped with a hint without the server, required in CI.
 */
import { ciStressRun } from "./_stress.ts";
import { pgTestOptions } from "./_pg.ts";

Deno.test({
  name: "stress, CI size, PostgreSQL: workload, crash trials and fencing hold every property",
  ...pgTestOptions(),
  fn: () =>
    ciStressRun({
      writers: 2,
      rounds: 3,
      models: 2,
      crashTrials: 4,
      fencing: 2,
      datastores: ["postgres"],
    }),
});
