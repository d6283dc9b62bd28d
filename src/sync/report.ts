/**
 * Per-model reports of push, pull and flush, and the exit code of a run.
 *
 * @example
 * ```ts
 * import { exitCodeFor } from "./report.ts";
 * console.log(exitCodeFor([{ model: "a/b", status: "pushed", files: 1, bytes: 1, generation: 1, ms: 3 }])); // 0
 * ```
 * @module
 */
import { listPaths } from "./format.ts";
import {
  classifyError,
  ConflictError,
  ContentChangedError,
  ExitCode,
  InterruptedError,
  LeaseLostError,
  LockTimeoutError,
  ModelsyncError,
} from "../errors.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import { formatBytes, pad } from "./format.ts";

/** What happened to one model. */
export type ModelStatus =
  | "pushed"
  | "pulled"
  | "deleted"
  | "unchanged"
  | "conflict"
  | "failed"
  | "lock-timeout"
  | "interrupted";

/** One model's line in a push / pull / flush report. */
export interface ModelReport {
  model: string;
  status: ModelStatus;
  /**
   * Push and flush: files in the model as committed (or, unchanged, as
   * synced). Pull: files written or removed in the working tree.
   */
  files: number;
  /** Push and flush: blobs uploaded (distinct contents the datastore lacked). */
  uploaded?: number;
  /** Bytes uploaded (push) or downloaded (pull). */
  bytes: number;
  /** The generation now committed (push) or landed (pull); null when none. */
  generation: number | null;
  ms: number;
  rebased?: boolean;
  conflicts?: string[];
  error?: string;
  /** Exit code of the error, for the run's exit code. Not printed. */
  exitCode?: number;
}

/** Summary counts. */
export interface Summary {
  pushed: number;
  pulled: number;
  deleted: number;
  unchanged: number;
  conflict: number;
  failed: number;
  lockTimeout: number;
  interrupted: number;
}

const OK: ReadonlySet<ModelStatus> = new Set(["pushed", "pulled", "deleted", "unchanged"]);

/** Turns a per-model error into its report line. */
export function failureReport(model: ModelRef, raw: unknown, ms: number): ModelReport {
  const err = classifyError(raw);
  const base = { model: formatRef(model), files: 0, bytes: 0, generation: null, ms };
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ConflictError || err instanceof ContentChangedError) {
    return {
      ...base,
      status: "conflict",
      ...(err instanceof ConflictError && err.paths.length > 0 ? { conflicts: err.paths } : {}),
      error: message,
      exitCode: err.exitCode,
    };
  }
  if (err instanceof LockTimeoutError || err instanceof LeaseLostError) {
    return { ...base, status: "lock-timeout", error: message, exitCode: err.exitCode };
  }
  if (err instanceof InterruptedError) {
    return { ...base, status: "interrupted", error: message, exitCode: err.exitCode };
  }
  const exitCode = err instanceof ModelsyncError ? err.exitCode : ExitCode.unexpected;
  return { ...base, status: "failed", error: message, exitCode };
}

/** Counts statuses. */
export function summarize(reports: readonly ModelReport[]): Summary {
  const s: Summary = {
    pushed: 0,
    pulled: 0,
    deleted: 0,
    unchanged: 0,
    conflict: 0,
    failed: 0,
    lockTimeout: 0,
    interrupted: 0,
  };
  for (const r of reports) {
    if (r.status === "lock-timeout") s.lockTimeout++;
    else s[r.status]++;
  }
  return s;
}

/**
 * The run's exit code: 0 when every model succeeded; 130 when interrupted;
 * 4 when every failure is a conflict; 75 when every failure is a lock
 * timeout; 5 when some models failed and others succeeded; otherwise the
 * failures' shared exit code (5 when they differ).
 */
export function exitCodeFor(reports: readonly ModelReport[]): number {
  const failures = reports.filter((r) => !OK.has(r.status));
  if (failures.length === 0) return ExitCode.ok;
  if (failures.some((r) => r.status === "interrupted")) return ExitCode.interrupted;
  if (failures.every((r) => r.status === "conflict")) return ExitCode.conflict;
  if (failures.every((r) => r.status === "lock-timeout")) return ExitCode.lockTimeout;
  if (failures.length < reports.length) return ExitCode.partial;
  const codes = new Set(failures.map((r) => r.exitCode ?? ExitCode.unexpected));
  return codes.size === 1 ? [...codes][0] : ExitCode.partial;
}

/** `1 file`, `2 files`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * Human lines, one per model. A failed model's error is not repeated here:
 * the command prints each error once on stderr.
 */
export function formatReports(
  reports: readonly ModelReport[],
  opts: { paint?: { status(status: string, text: string): string } } = {},
): string[] {
  if (reports.length === 0) return ["No models."];
  const width = Math.max(8, ...reports.map((r) => r.model.length));
  return reports.map((r) => {
    const status = pad(r.status, 14);
    const parts = [
      (opts.paint ? opts.paint.status(r.status, status) : status) + pad(r.model, width),
    ];
    if (r.generation !== null) parts.push(`generation ${r.generation}`);
    if (OK.has(r.status) && (r.status !== "unchanged" || r.files > 0)) {
      parts.push(plural(r.files, "file"));
      if (r.uploaded !== undefined && r.status !== "unchanged") {
        parts.push(`${plural(r.uploaded, "blob")} uploaded (${formatBytes(r.bytes)})`);
      } else if (r.status !== "unchanged") parts.push(formatBytes(r.bytes));
    }
    parts.push(`${r.ms} ms`);
    if (r.rebased) parts.push("(rebased)");
    let line = parts.join("  ");
    if (r.conflicts !== undefined && r.conflicts.length > 0 && r.error === undefined) {
      line += `\n  conflicts: ${listPaths(r.conflicts)}`;
    }
    return line;
  });
}
