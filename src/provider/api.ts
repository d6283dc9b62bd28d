/**
 * What a provider implementation imports (the package's `./provider`
 * export): the contract types (two primitives: blobs and records, plus
 * capabilities as plain data), the errors a provider throws, and SHA-256 of
 * a buffer. It loads nothing else: no protocol, no conformance kit, no
 * built-in provider. Tests of a provider import `./testing`, which adds the
 * conformance kit and the protocol to run it with.
 *
 * @example
 * ```ts ignore
 * import { ContentChangedError, type Provider, type ProviderModule } from "@modelsync/cli/provider";
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
  HasBlobsOptions,
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
  ModelsyncError,
  NotFoundError,
  UsageError,
} from "../errors.ts";
export { hashBytes } from "../model/hash.ts";
