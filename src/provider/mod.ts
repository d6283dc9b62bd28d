/**
 * What a provider author needs (the package's `testing` export): the
 * provider contract, the errors a provider throws, lock judgement,
 * capability reading, manifest validation, and the conformance kit.
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
  AcquireResult,
  BlobSource,
  CallOptions,
  Capabilities,
  CapabilityName,
  LockHandle,
  LockInfo,
  LockKey,
  LockRecord,
  LockRequest,
  ManifestListing,
  ProbeCheck,
  Provider,
  ProviderContext,
  ProviderModule,
  StoredManifest,
} from "./contract.ts";
export { CAPABILITY_NAMES } from "./contract.ts";
export {
  ConflictError,
  ContentChangedError,
  CorruptError,
  DatastoreError,
  LeaseLostError,
  NotFoundError,
} from "../errors.ts";
export { describeHolder, judgeLock, type JudgeOptions, pidAlive, printable } from "./stale.ts";
export {
  capabilityProblems,
  type CapabilityReading,
  NO_CAPABILITIES,
  readCapabilities,
} from "./capabilities.ts";
export {
  type Committer,
  type FileEntry,
  makeManifest,
  type Manifest,
  parseManifest,
} from "../model/manifest.ts";
export type { ModelRef } from "../model/ref.ts";
export {
  type ConformanceCheck,
  conformanceChecks,
  type ConformanceOptions,
  runConformance,
} from "./conformance.ts";
