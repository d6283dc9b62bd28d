/**
 * Whole-model deletes are deliberate: a push or flush commits a tombstone
 * (an empty manifest, which deletes the model for everyone who pulls) only
 * for a model named on the command line, or with `--allow-delete`
 * (`MODELSYNC_ALLOW_DELETE`, `allowDelete` in modelsync.yaml). Otherwise the
 * model is reported `delete-pending` and nothing is committed. Deleting some
 * files of a model stays an ordinary change.
 *
 * `--allow-delete` is resolved with the other settings (`src/sync/settings.ts`).
 *
 * @module
 */
import { ExitCode } from "../errors.ts";
import type { BaseState } from "../model/base.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import { matchesExclude } from "../repo/exclude.ts";
import type { PackedScan } from "../repo/packed_scan.ts";
import type { ScanResult } from "../repo/scan.ts";
import type { ModelReport } from "./report.ts";

/**
 * True when the local model holds no file while its base names some that
 * are synced (not excluded): pushing it would commit a tombstone.
 */
export function isWholeModelDelete(
  scan: ScanResult | PackedScan,
  base: BaseState | null,
  exclude: readonly string[],
): boolean {
  if (base === null) return false;
  const files = "packed" in scan ? scan.size.length : scan.files.size;
  if (files > 0) return false;
  return base.files.some((f) => !matchesExclude(f.path, [...exclude]));
}

/** The report of a whole-model delete held back: the row says so, with the remedy. */
export function deletePendingReport(model: ModelRef, base: BaseState, ms: number): ModelReport {
  const key = formatRef(model);
  const n = base.files.length;
  return {
    model: key,
    status: "delete-pending",
    files: 0,
    bytes: 0,
    generation: base.generation,
    ms,
    error:
      `${key} was deleted here (${
        n === 1 ? "its only file is" : `all ${n} files are`
      } gone) and the deletion was not pushed: a whole model is deleted in the datastore only ` +
      `when asked. Run "modelsync push ${key}" (or pass --allow-delete) to delete it for ` +
      `everyone, or "modelsync pull --theirs ${key}" to bring it back.`,
    exitCode: ExitCode.usage,
  };
}
