/** Output shared by push, flush and pull. @module */
import type { Paint } from "../src/cli/output.ts";
import { logger } from "../src/log.ts";
import { formatReports } from "../src/sync/report.ts";
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

/** `lockTimeout` → `lock-timeout`: summary keys as statuses are printed. */
function statusWord(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** One closing line: the count of each status that occurred, and the lock path. */
export function summaryLine(r: SyncResult, paint?: Paint): string {
  const counts = Object.entries(r.summary).filter(([, n]) => n > 0).map(([k, n]) => {
    const word = statusWord(k);
    return `${n} ${paint ? paint.status(word, word) : word}`;
  });
  const n = r.models.length;
  const what = counts.length === 0 ? "nothing to do" : counts.join(", ");
  return `${n} ${n === 1 ? "model" : "models"}: ${what} (lock path ${r.lockPath})`;
}

/**
 * The human report: a row per model that changed or failed (every model
 * with `-v`), then the summary line. A no-op run is one line.
 */
export function syncLines(r: SyncResult, opts: { verbose: boolean; paint: Paint }): string[] {
  const shown = opts.verbose ? r.models : r.models.filter((m) => m.status !== "unchanged");
  return [
    ...(shown.length === 0 ? [] : formatReports(shown, { paint: opts.paint })),
    summaryLine(
      r,
      opts.paint,
    ),
  ];
}

/** Logs each failed model's error once on stderr (the report's rows name the model). */
export function logFailures(r: SyncResult): void {
  // One line per distinct error: an interrupt that stops five models is said once.
  for (const error of new Set(r.models.map((m) => m.error))) {
    if (error !== undefined) logger("sync").error(error);
  }
}
