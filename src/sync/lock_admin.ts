/**
 * `lock status` and `lock release --force`: operators' view of the locks.
 * Neither ever takes a lock.
 *
 * @module
 */
import { ExitCode } from "../errors.ts";
import { logger } from "../log.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import type { LockInfo, LockKey, LockRecord } from "../lock/records.ts";
import { describeHolder, printable } from "../provider/stale.ts";
import { formatDuration } from "../duration.ts";
import type { Session } from "./session.ts";

/** One lock as `lock status` shows it: the record with its judgement. */
export type LockRow = LockRecord & {
  ageMs: number;
  ttlLeftMs: number;
  state: "live" | "stale";
  staleReason?: string;
};

/** The `lock status` result. */
export interface LockStatusResult {
  schema: "modelsync.locks/1";
  locks: LockRow[];
}

function row(info: LockInfo): LockRow {
  return {
    ...info.record,
    ageMs: info.ageMs,
    ttlLeftMs: info.ttlLeftMs,
    state: info.stale ? "stale" : "live",
    ...(info.staleReason === undefined ? {} : { staleReason: info.staleReason }),
  };
}

/** Lists every lock with its judgement. */
export async function runLockStatus(s: Session): Promise<LockStatusResult> {
  const locks = await s.provider.listLocks({ signal: s.signal });
  const rows = locks.map(row).sort((a, b) =>
    a.key === "global" ? -1 : b.key === "global" ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0
  );
  return { schema: "modelsync.locks/1", locks: rows };
}

/** Human lines for `lock status`. */
export function formatLockStatus(r: LockStatusResult): string[] {
  if (r.locks.length === 0) return ["No locks held."];
  return r.locks.map((l) => {
    const ttl = l.ttlLeftMs >= 0
      ? `${formatDuration(l.ttlLeftMs)} left`
      : `expired ${formatDuration(-l.ttlLeftMs)} ago`;
    // Records come from the datastore: never print their control characters.
    const state = l.state === "live" ? "live " : `STALE (${printable(l.staleReason ?? "stale")})`;
    return `${printable(l.key)}  ${state}  ${printable(l.holder)}@${
      printable(l.host)
    } pid ${l.pid}  ` +
      `${printable(l.operation)}  age ${formatDuration(l.ageMs)}  ttl ${ttl}`;
  });
}

/** The `lock release --force` result. */
export interface LockReleaseResult {
  schema: "modelsync.lock-release/1";
  released: string[];
  refused: string[];
  free: string[];
  /** Not printed. */
  exitCode: number;
  messages: string[];
}

/**
 * Force-releases the global lock or model locks: inspects each, then deletes
 * it only if it still carries the inspected nonce. Exit 4 when a holder
 * changed in between, 3 when a named lock is not held.
 */
export async function runLockRelease(
  s: Session,
  opts: { global: boolean; models: ModelRef[] },
): Promise<LockReleaseResult> {
  const keys: LockKey[] = opts.global ? [{ kind: "global" }] : [];
  for (const m of opts.models) keys.push({ kind: "model", model: m });
  const result: LockReleaseResult = {
    schema: "modelsync.lock-release/1",
    released: [],
    refused: [],
    free: [],
    exitCode: 0,
    messages: [],
  };
  for (const key of keys) {
    const name = key.kind === "global" ? "global" : formatRef(key.model);
    const handle = s.provider.lock(key);
    const info = await handle.inspect({ signal: s.signal });
    if (info === null) {
      result.free.push(name);
      logger("lock").error(
        `No lock held on ${name}: nothing to release. See "modelsync lock status".`,
      );
      continue;
    }
    const ok = await handle.forceRelease(info.record.nonce, { signal: s.signal });
    if (ok) {
      result.released.push(name);
      result.messages.push(
        `Released the lock on ${name} held by ${describeHolder(info.record)}${
          info.stale
            ? ` (stale: ${info.staleReason ?? "stale"})`
            : " (it was live: that process may still be working)"
        }.`,
      );
    } else {
      result.refused.push(name);
      logger("lock").error(
        `Refused to release ${name}: its holder changed since it was inspected. Run "modelsync lock status" and retry.`,
      );
    }
  }
  if (result.refused.length > 0) result.exitCode = ExitCode.conflict;
  else if (result.free.length > 0 && result.released.length === 0) {
    result.exitCode = ExitCode.notFound;
  }
  return result;
}
