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
  UnsyncableError,
} from "../errors.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import { formatBytes, pad } from "./format.ts";

/**
 * What happened to one model. `deleted`: a tombstone was pushed, or a pulled
 * one removed the model here. `kept`: `pull --ours` kept the local files
 * against a remote deletion or an older datastore generation.
 * `delete-pending`: the model was deleted locally and not pushed (a push
 * deletes a whole model only when it is named or with --allow-delete).
 * `changed`: a file changed while it was pushed. `lease-lost`: the lock was
 * released by force or taken over while working.
 */
export type ModelStatus =
  | "pushed"
  | "pulled"
  | "deleted"
  | "kept"
  | "unchanged"
  | "delete-pending"
  | "conflict"
  | "changed"
  | "failed"
  | "lock-timeout"
  | "lease-lost"
  | "interrupted";

/** Copies saved under `.modelsync/conflicts/` so that no version is destroyed. */
export interface SavedCopies {
  /** The directory, relative to the repository, e.g. `.modelsync/conflicts/vpc/m1/20261126T052046.915Z-gen3-theirs`. */
  dir: string;
  /** Whose version is saved there: the datastore's (`theirs`) or this repository's (`ours`). */
  side: "theirs" | "ours";
  /** Paths relative to the model directory (and to `dir`), sorted. */
  paths: string[];
}

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
  /** Entries of the model that cannot be synced (the model was not pushed), each with why. */
  unsyncable?: { path: string; problem: string }[];
  /** Versions not chosen (or not landed on a conflict), saved under `.modelsync/conflicts/`. */
  saved?: SavedCopies;
  /** Something the user should know although the model succeeded (e.g. a datastore rollback). */
  warning?: string;
  error?: string;
  /** Exit code of the error, for the run's exit code. Not printed. */
  exitCode?: number;
}

/** Summary counts. */
export interface Summary {
  pushed: number;
  pulled: number;
  deleted: number;
  kept: number;
  unchanged: number;
  deletePending: number;
  conflict: number;
  changed: number;
  failed: number;
  lockTimeout: number;
  leaseLost: number;
  interrupted: number;
}

const OK: ReadonlySet<ModelStatus> = new Set(["pushed", "pulled", "deleted", "kept", "unchanged"]);

const SUMMARY_KEY: Record<ModelStatus, keyof Summary> = {
  pushed: "pushed",
  pulled: "pulled",
  deleted: "deleted",
  kept: "kept",
  unchanged: "unchanged",
  "delete-pending": "deletePending",
  conflict: "conflict",
  changed: "changed",
  failed: "failed",
  "lock-timeout": "lockTimeout",
  "lease-lost": "leaseLost",
  interrupted: "interrupted",
};

/** Saved copies carried by an error (a pull conflict saves the datastore's versions). */
function savedOf(err: unknown): SavedCopies | undefined {
  const saved = (err as { saved?: SavedCopies } | null)?.saved;
  return saved !== undefined && saved.paths.length > 0 ? saved : undefined;
}

/** Turns a per-model error into its report line. */
export function failureReport(model: ModelRef, raw: unknown, ms: number): ModelReport {
  const err = classifyError(raw);
  const base = { model: formatRef(model), files: 0, bytes: 0, generation: null, ms };
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ConflictError) {
    const saved = savedOf(err);
    return {
      ...base,
      status: "conflict",
      ...(err.paths.length > 0 ? { conflicts: err.paths } : {}),
      ...(saved ? { saved } : {}),
      error: message,
      exitCode: err.exitCode,
    };
  }
  if (err instanceof ContentChangedError) {
    return { ...base, status: "changed", error: message, exitCode: err.exitCode };
  }
  if (err instanceof LockTimeoutError) {
    return { ...base, status: "lock-timeout", error: message, exitCode: err.exitCode };
  }
  if (err instanceof LeaseLostError) {
    return { ...base, status: "lease-lost", error: message, exitCode: err.exitCode };
  }
  if (err instanceof InterruptedError) {
    return { ...base, status: "interrupted", error: message, exitCode: err.exitCode };
  }
  const exitCode = err instanceof ModelsyncError ? err.exitCode : ExitCode.unexpected;
  if (err instanceof UnsyncableError) {
    return { ...base, status: "failed", unsyncable: err.entries, error: message, exitCode };
  }
  return { ...base, status: "failed", error: message, exitCode };
}

/** Counts statuses. */
export function summarize(reports: readonly ModelReport[]): Summary {
  const s: Summary = {
    pushed: 0,
    pulled: 0,
    deleted: 0,
    kept: 0,
    unchanged: 0,
    deletePending: 0,
    conflict: 0,
    changed: 0,
    failed: 0,
    lockTimeout: 0,
    leaseLost: 0,
    interrupted: 0,
  };
  for (const r of reports) s[SUMMARY_KEY[r.status]]++;
  return s;
}

/**
 * The run's exit code: 0 when every model succeeded; 130 when interrupted;
 * 2 when every model not synced is a whole-model delete held back
 * (`delete-pending`: it needs the model named or --allow-delete); 4 when
 * every failure is a conflict or a file that changed while pushed; 75 when
 * every failure is a lock timeout or a lost lease; 5 when some models failed
 * and others succeeded; otherwise the failures' shared exit code (5 when
 * they differ).
 */
export function exitCodeFor(reports: readonly ModelReport[]): number {
  const failures = reports.filter((r) => !OK.has(r.status));
  if (failures.length === 0) return ExitCode.ok;
  if (failures.some((r) => r.status === "interrupted")) return ExitCode.interrupted;
  if (failures.every((r) => r.status === "delete-pending")) return ExitCode.usage;
  if (failures.every((r) => r.status === "conflict" || r.status === "changed")) {
    return ExitCode.conflict;
  }
  if (failures.every((r) => r.status === "lock-timeout" || r.status === "lease-lost")) {
    return ExitCode.lockTimeout;
  }
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
  const statusWidth = Math.max(14, ...reports.map((r) => r.status.length + 2));
  return reports.map((r) => {
    const status = pad(r.status, statusWidth);
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
    // The error itself is printed once, on stderr (logFailures).
    if (r.warning !== undefined) line += `\n  warning: ${r.warning}`;
    if (r.conflicts !== undefined && r.conflicts.length > 0 && r.error === undefined) {
      line += `\n  conflicts: ${listPaths(r.conflicts)}`;
    }
    // (A conflict's error already says where it saved the datastore's version.)
    if (r.saved !== undefined && !r.error?.includes(r.saved.dir)) {
      line += `\n  ${describeSaved(r.saved)}`;
    }
    return line;
  });
}

/** One line saying which versions were saved where. */
export function describeSaved(saved: SavedCopies): string {
  const whose = saved.side === "theirs" ? "the datastore's version" : "your version";
  return `saved ${whose} of ${listPaths(saved.paths)} in ${saved.dir}/`;
}
