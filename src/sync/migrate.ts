/**
 * `migrate`: converts a datastore of format 1 in place to format 2
 * (design/format.md), under the global lock, and can be rerun after an
 * interruption.
 *
 * Format 1 kept one manifest per model (`manifests/TYPE/ID…`), lock records
 * `locks/…json` (format 2 keeps its lock records under `leases/`) and the marker `modelsync.json` {"format": 1}. Blobs keep
 * their place. The steps, each safe to repeat:
 *
 * 1. take the global lock of format 2, and block format-1 writers with a
 *    format-1 global lock record (refusing while a format-1 process holds a
 *    live lock);
 * 2. for every format-1 manifest whose model has no head yet: write its
 *    current generation as the model's first commit (history record, then
 *    head); older format-1 generations are not carried over;
 * 3. write the format-2 marker `config` and make `modelsync.json` say
 *    `{"format": 2}`: from here format-2 clients use the datastore and
 *    format-1 clients refuse it, asking to upgrade;
 * 4. remove the format-1 manifests and lock records (the format-1 global
 *    lock last).
 *
 * @module
 */
import { DatastoreError, LockTimeoutError } from "../errors.ts";
import { logger } from "../log.ts";
import { parseManifestText } from "../model/manifest.ts";
import { commitManifest, getHead } from "../model/commits.ts";
import { formatRef, type ModelRef, parseModelRef } from "../model/ref.ts";
import { LockManager } from "../lock/mod.ts";
import { listAllRecords } from "../provider/keys.ts";
import { storedLockRecordSchema } from "../provider/lock_schema.ts";
import { describeHolder, judgeLock } from "../provider/stale.ts";
import { SKEW_MARGIN_MS } from "../lock/mod.ts";
import type { Session } from "./session.ts";

/** The `migrate` result. */
export interface MigrateResult {
  schema: "modelsync.migrate/1";
  /** The format the datastore was in when the command started. */
  from: number;
  /** Models whose format-1 manifest became their first commit in this run. */
  converted: string[];
  /** Models that already had a head (converted by an earlier, interrupted run). */
  alreadyConverted: string[];
  /** Format-1 records removed. */
  removed: number;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const FORMAT1_GLOBAL_LOCK = "locks/global.json";

/** The model of a format-1 manifest key (`manifests/TYPE/ID` or `manifests/TYPE/ID.json`). */
function modelOfFormat1Key(key: string): ModelRef | undefined {
  try {
    return parseModelRef(key.slice("manifests/".length).replace(/\.json$/, ""));
  } catch {
    return undefined;
  }
}

/** Runs `migrate` on the session's datastore (opened with `format1: true`). */
export async function runMigrate(s: Session): Promise<MigrateResult> {
  const ds = s.provider;
  const p = ds.provider;
  const signal = s.signal;
  const from = ds.marker?.format ?? 2;
  const result: MigrateResult = {
    schema: "modelsync.migrate/1",
    from,
    converted: [],
    alreadyConverted: [],
    removed: 0,
  };
  const manifests = await listAllRecords(p, "manifests/", { signal });
  const format1Locks = await listAllRecords(p, "locks/", { signal });
  if (from === 2 && manifests.length === 0 && format1Locks.length === 0) {
    return result; // nothing to do
  }
  const manager = new LockManager({
    provider: ds,
    caps: { ...s.capabilities.caps, scopedSync: false },
    holder: s.identity,
    operation: "migrate",
    lockTimeoutMs: s.settings.lockTimeoutMs,
    ttlMs: s.settings.lockTtlMs,
    signal,
  });
  const [outcome] = await manager.run(
    [{ type: "migrate", id: "datastore" }],
    async (_m, ctx) => {
      await blockFormat1Writers(s, format1Locks);
      for (const r of manifests) {
        const model = modelOfFormat1Key(r.key);
        if (model === undefined) continue;
        if ((await getHead(p, model, { signal })) !== null) {
          result.alreadyConverted.push(formatRef(model));
          continue;
        }
        const rec = await p.getRecord(r.key, { signal });
        if (rec === null) continue;
        const manifest = parseManifestText(decoder.decode(rec.bytes), model, r.key, {
          format1: true,
        });
        await ctx.lease.confirm();
        await commitManifest(p, model, null, manifest, { signal });
        result.converted.push(formatRef(model));
      }
      await ds.writeMarker({ signal });
      // Format-1 leftovers: manifests, lock records (ours last) and the marker.
      const leftovers = [
        ...manifests,
        ...(await listAllRecords(p, "locks/", { signal })).sort((
          a,
          b,
        ) => (a.key === FORMAT1_GLOBAL_LOCK ? 1 : b.key === FORMAT1_GLOBAL_LOCK ? -1 : 0)),
      ];
      for (const r of leftovers) {
        if (await p.deleteRecord(r.key, r.version, { signal })) result.removed++;
      }
    },
    { jobs: 1 },
  );
  await manager.releaseAll();
  if (!outcome.ok) throw outcome.error;
  result.converted.sort();
  result.alreadyConverted.sort();
  return result;
}

/**
 * Refuses while a format-1 process holds a live lock, and takes the
 * format-1 global lock, so format-1 writers wait (or fail) until the marker
 * tells them the datastore moved on.
 */
async function blockFormat1Writers(
  s: Session,
  locks: readonly { key: string; version: string }[],
): Promise<void> {
  const p = s.provider.provider;
  for (const l of locks) {
    const rec = await p.getRecord(l.key, { signal: s.signal });
    if (rec === null) continue;
    let parsed;
    try {
      parsed = storedLockRecordSchema.safeParse(JSON.parse(decoder.decode(rec.bytes)));
    } catch {
      parsed = undefined;
    }
    if (
      parsed?.success && parsed.data.holder === s.identity.holder &&
      parsed.data.operation === "migrate" && parsed.data.host === s.identity.host
    ) {
      continue; // our own blocker from an earlier, interrupted run
    }
    if (parsed?.success) {
      const info = judgeLock(parsed.data, {
        nowMs: Date.now(),
        skewMarginMs: SKEW_MARGIN_MS,
        host: s.identity.host,
        pid: s.identity.pid,
      });
      if (!info.stale) {
        throw new LockTimeoutError(
          `A format-1 modelsync is working on this datastore (${describeHolder(parsed.data)}): ` +
            `let it finish, then rerun "modelsync migrate".`,
        );
      }
    }
    if (l.key === FORMAT1_GLOBAL_LOCK) {
      await p.deleteRecord(l.key, rec.version, { signal: s.signal });
    }
  }
  const now = new Date().toISOString();
  const blocker = {
    key: "global",
    holder: s.identity.holder,
    host: s.identity.host,
    pid: s.identity.pid,
    operation: "migrate",
    acquiredAt: now,
    renewedAt: now,
    ttlMs: 24 * 60 * 60 * 1000,
    nonce: crypto.randomUUID().replaceAll("-", ""),
    seq: 0,
  };
  const made = await p.createRecord(
    FORMAT1_GLOBAL_LOCK,
    encoder.encode(JSON.stringify(blocker) + "\n"),
    { signal: s.signal },
  );
  if (made === null) {
    const again = await p.getRecord(FORMAT1_GLOBAL_LOCK, { signal: s.signal });
    const text = again === null ? "" : decoder.decode(again.bytes);
    if (!text.includes('"operation":"migrate"')) {
      throw new DatastoreError(
        `Another process took the format-1 global lock while migrate started; rerun ` +
          `"modelsync migrate".`,
        { retryable: true },
      );
    }
  }
  logger("sync").info("Format-1 writers are blocked while the datastore is converted.");
}

/** Human lines for `migrate`. */
export function formatMigrate(r: MigrateResult): string[] {
  if (r.from === 2 && r.converted.length === 0 && r.removed === 0) {
    return ["The datastore is already in format 2: nothing to migrate."];
  }
  const n = r.converted.length;
  const lines = [
    `Converted ${n} ${n === 1 ? "model" : "models"} to datastore format 2` +
    (r.alreadyConverted.length > 0
      ? ` (${r.alreadyConverted.length} converted by an earlier run)`
      : "") +
    `; removed ${r.removed} format-1 ${r.removed === 1 ? "record" : "records"}.`,
  ];
  for (const m of r.converted) lines.push(`  ${m}`);
  return lines;
}
