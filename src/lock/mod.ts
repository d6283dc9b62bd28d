/**
 * Locks: leases with a renewal loop and the lock manager that runs work on
 * models under per-model locks (scoped path) or one global lock (global
 * path). See design/locks.md.
 *
 * @example
 * ```ts ignore
 * import { LockManager } from "./mod.ts";
 * const manager = new LockManager({
 *   provider, caps, holder: { holder: "ci", host: "build-3", pid: Deno.pid },
 *   operation: "flush", lockTimeoutMs: 60_000, ttlMs: 30_000, signal,
 * });
 * Deno.addSignalListener("SIGINT", () => void manager.releaseAll());
 * const outcomes = await manager.run(models, pushOne, { jobs: 4 });
 * ```
 * @module
 */
export { describeLock, Lease, type LeaseOptions, lockKeyName } from "./lease.ts";
export {
  type AcquireResult,
  type LockHandle,
  type LockInfo,
  type LockKey,
  type LockRecord,
  lockRecordKey,
  type LockRequest,
  RecordLocks,
} from "./records.ts";
export {
  DEFAULT_LOCK_TIMEOUT_MS,
  DEFAULT_TTL_MS,
  LockManager,
  type LockManagerOptions,
  type LockPath,
  type LockSource,
  type ModelOutcome,
  type ModelWork,
  SKEW_MARGIN_MS,
  type WorkContext,
} from "./manager.ts";
