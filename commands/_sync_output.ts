/** Output shared by push, flush and pull. @module */
import { logger } from "../src/log.ts";
import type { SyncResult } from "../src/sync/run.ts";

/** The JSON document of a sync run (internal fields dropped). */
export function syncJson(r: SyncResult) {
  return {
    schema: r.schema,
    lockPath: r.lockPath,
    models: r.models.map(({ exitCode: _drop, ...rest }) => rest),
    summary: r.summary,
  };
}

/** One closing line: counts per status (the rarer ones only when they occur). */
export function summaryLine(r: SyncResult): string {
  const s = r.summary;
  const extra = [
    [s.deleted, "deleted"],
    [s.kept, "kept"],
    [s.deletePending, "delete-pending"],
    [s.changed, "changed"],
    [s.leaseLost, "lease-lost"],
    [s.interrupted, "interrupted"],
  ].filter(([n]) => (n as number) > 0).map(([n, what]) => `, ${n} ${what}`).join("");
  return `${r.models.length} ${
    r.models.length === 1 ? "model" : "models"
  }: ${s.pushed} pushed, ${s.unchanged} unchanged, ${s.conflict} conflict, ` +
    `${s.failed} failed, ${s.lockTimeout} lock-timeout${extra} (lock path ${r.lockPath})`;
}

/** Logs each failed model's error on stderr (the report on stdout lists it too). */
export function logFailures(r: SyncResult): void {
  // One line per distinct error: an interrupt that stops five models is said once.
  for (const error of new Set(r.models.map((m) => m.error))) {
    if (error !== undefined) logger("sync").error(error);
  }
}
