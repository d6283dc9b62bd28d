/**
 * What a provider's tests need (the package's `./testing` export):
 * everything of `./provider` (`./api.ts`: the contract, the errors, SHA-256)
 * plus capability reading, the datastore protocol built on top (to run it
 * against a provider), the live probe and the conformance kit.
 *
 * @example
 * ```ts ignore
 * import { runConformance } from "@modelsync/cli/testing";
 * Deno.test("my provider conforms", (t) =>
 *   runConformance(t, { name: "mine", factory: () => makeFreshProvider() }));
 * ```
 * @module
 */
export * from "./api.ts";
export { listAllRecords } from "./keys.ts";
export {
  capabilityProblems,
  type CapabilityReading,
  NO_CAPABILITIES,
  readCapabilities,
} from "./capabilities.ts";
export { Datastore, type DatastoreContext } from "./datastore.ts";
export { runProbe } from "./probe.ts";
export {
  type ConformanceCheck,
  conformanceChecks,
  type ConformanceOptions,
  runConformance,
} from "./conformance.ts";
