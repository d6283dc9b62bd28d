/**
 * A CI-sized stress run on a filesystem datastore (tests/_stress.ts): the
 * concurrent workload, crash trials and fencing trials hold every property.
 */
import { ciStressRun } from "./_stress.ts";

Deno.test("stress, CI size, filesystem: workload, crash trials and fencing hold every property", () =>
  ciStressRun({
    writers: 3,
    rounds: 6,
    models: 2,
    crashTrials: 10,
    fencing: 2,
    datastores: ["filesystem"],
  }));
