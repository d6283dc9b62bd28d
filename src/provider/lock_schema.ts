/**
 * The stored form of a lock record (a JSON document in the lock's record),
 * shared by everything that reads lock records.
 *
 * @example
 * ```ts
 * import { storedLockRecordSchema } from "./lock_schema.ts";
 * const r = storedLockRecordSchema.parse({
 *   key: "vpc/m1", holder: "ci", host: "build-3", pid: 42, operation: "push",
 *   acquiredAt: "2026-01-01T00:00:00.000Z", renewedAt: "2026-01-01T00:00:00.000Z",
 *   ttlMs: 30000, nonce: "n1",
 * });
 * console.log(r.holder); // ci
 * ```
 * @module
 */
import { z } from "zod";
import type { LockRecord } from "../lock/records.ts";

/** A lock record as stored. Unknown keys are ignored (a newer version may add some). */
export const storedLockRecordSchema: z.ZodType<LockRecord, unknown> = z.object({
  key: z.string(),
  holder: z.string(),
  host: z.string(),
  pid: z.number().int(),
  operation: z.string(),
  // Shown as the lock's age: a record whose acquiredAt is no time is corrupt
  // (an unreadable renewedAt instead makes it stale: src/provider/stale.ts).
  acquiredAt: z.string().refine((t) => Number.isFinite(Date.parse(t)), "not a time"),
  renewedAt: z.string(),
  ttlMs: z.number().int().positive(),
  nonce: z.string().min(1),
  repo: z.string().optional(),
});

/** The record with exactly the contract's fields. */
export function publicRecord(r: LockRecord): LockRecord {
  return {
    key: r.key,
    holder: r.holder,
    host: r.host,
    pid: r.pid,
    operation: r.operation,
    acquiredAt: r.acquiredAt,
    renewedAt: r.renewedAt,
    ttlMs: r.ttlMs,
    nonce: r.nonce,
    ...(r.repo === undefined ? {} : { repo: r.repo }),
  };
}
