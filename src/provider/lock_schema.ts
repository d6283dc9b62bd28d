/**
 * The stored form of a lock record, shared by the built-in providers that
 * keep lock records as JSON documents (filesystem, S3): the
 * {@linkcode LockRecord} fields plus `seq`, a write counter (0 when absent).
 *
 * @example
 * ```ts
 * import { storedLockRecordSchema } from "./lock_schema.ts";
 * const r = storedLockRecordSchema.parse({
 *   key: "vpc/m1", holder: "ci", host: "build-3", pid: 42, operation: "push",
 *   acquiredAt: "2026-01-01T00:00:00.000Z", renewedAt: "2026-01-01T00:00:00.000Z",
 *   ttlMs: 30000, nonce: "n1",
 * });
 * console.log(r.seq); // 0
 * ```
 * @module
 */
import { z } from "zod";
import type { LockRecord } from "./contract.ts";

/** A lock record as stored: {@linkcode LockRecord} plus a write counter `seq`. */
export const storedLockRecordSchema: z.ZodType<LockRecord & { seq: number }, unknown> = z.object({
  key: z.string(),
  holder: z.string(),
  host: z.string(),
  pid: z.number().int(),
  operation: z.string(),
  acquiredAt: z.string(),
  renewedAt: z.string(),
  ttlMs: z.number().int().positive(),
  nonce: z.string().min(1),
  repo: z.string().optional(),
  seq: z.number().int().nonnegative().default(0),
});

/** The record without the stored-only `seq`, as the contract returns it. */
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
