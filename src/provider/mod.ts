/**
 * What a provider author needs (the package's `./testing` and `./provider`
 * exports): the provider contract (two primitives: blobs and records), the
 * errors a provider throws, capability reading, the datastore protocol built
 * on top (to run it against a provider), and the conformance kit.
 *
 * @example
 * ```ts ignore
 * import { runConformance } from "@modelsync/cli/testing";
 * Deno.test("my provider conforms", (t) =>
 *   runConformance(t, { name: "mine", factory: () => makeFreshProvider() }));
 * ```
 * @module
 */
export type {
  BlobListing,
  BlobSource,
  ByteRange,
  CallOptions,
  Capabilities,
  CapabilityName,
  GetBlobOptions,
  ListOptions,
  Page,
  ProbeCheck,
  Provider,
  ProviderContext,
  ProviderModule,
  RecordListing,
  StoredRecord,
} from "./contract.ts";
export { CAPABILITY_NAMES } from "./contract.ts";
export {
  ConflictError,
  ContentChangedError,
  CorruptError,
  DatastoreError,
  LeaseLostError,
  NotFoundError,
  UsageError,
} from "../errors.ts";
export { hashBytes } from "../model/hash.ts";
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
