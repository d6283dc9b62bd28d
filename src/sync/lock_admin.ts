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
  /** `corrupt`: the record cannot be read (it is stale once unchanged for a while). */
  state: "live" | "stale" | "corrupt";
  staleReason?: string;
};

/** A record the provider could not parse carries a synthetic nonce `corrupt-…`. */
function isCorrupt(record: LockRecord): boolean {
  return record.nonce.startsWith("corrupt-");
}

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
    state: info.stale ? "stale" : isCorrupt(info.record) ? "corrupt" : "live",
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

/**
 * Human lines for `lock status`: aligned columns (lock, state, holder, pid,
 * operation, age, ttl or why it is stale, repository). Records come from the
 * datastore, so every field goes through `printable`.
 */
export function formatLockStatus(
  r: LockStatusResult,
  opts: { paint?: { status(kind: string, text: string): string } } = {},
): string[] {
  if (r.locks.length === 0) return ["No locks held."];
  const rows = r.locks.map((l) => {
    const corrupt = isCorrupt(l);
    const when = corrupt
      ? (l.staleReason ? `stale: ${l.staleReason}` : "corrupt record; not stale yet")
      : l.state === "stale"
      ? `stale: ${l.staleReason ?? "expired"}`
      : l.ttlLeftMs >= 0
      ? `ttl ${formatDuration(l.ttlLeftMs)} left`
      : `expired ${formatDuration(-l.ttlLeftMs)} ago (within the clock-skew margin)`;
    return {
      state: l.state,
      cells: [
        printable(l.key),
        l.state,
        corrupt ? "corrupt record" : `${printable(l.holder)}@${printable(l.host)}`,
        corrupt ? "-" : String(l.pid),
        corrupt ? "-" : printable(l.operation),
        formatDuration(l.ageMs),
        printable(when),
        l.repo === undefined ? "" : printable(l.repo),
      ],
    };
  });
  const header = ["LOCK", "STATE", "HOLDER", "PID", "OPERATION", "AGE", "TTL / WHY", "REPOSITORY"];
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => row.cells[i].length))
  );
  const line = (cells: string[], state?: string) =>
    cells.map((c, i) => {
      const padded = i === cells.length - 1 ? c : c.padEnd(widths[i]);
      return i === 1 && state !== undefined && opts.paint
        ? opts.paint.status(state === "live" ? "" : state === "stale" ? "STALE" : "corrupt", padded)
        : padded;
    }).join("  ").trimEnd();
  return [line(header), ...rows.map((row) => line(row.cells, row.state))];
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
