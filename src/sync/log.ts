/**
 * `log MODEL`: a model's generations, newest first, from its head along the
 * parent links (design/history.md). Read-only: no lock, no
 * repository needed.
 *
 * @module
 */
import { ExitCode, NotFoundError } from "../errors.ts";
import { logger } from "../log.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import { type ChangeCounts, changesFrom, type HistoryEnd, walkHistory } from "../model/history.ts";
import { isTombstone } from "../model/manifest.ts";
import { listHistoryKeys } from "../model/commits.ts";
import { printable } from "../provider/stale.ts";
import { formatBytes, pad } from "./format.ts";
import type { Session } from "./session.ts";

/** One generation as `log` shows it. */
export interface LogEntry {
  generation: number;
  commit: string;
  parent: { generation: number; commit: string } | null;
  committedAt: string;
  committedBy: { holder: string; host: string; pid: number };
  files: number;
  bytes: number;
  /** True for a tombstone (the model was deleted in this generation). */
  deleted: boolean;
  /** Relative to the parent; null when the parent's record was removed by gc or is unreadable. */
  changes: ChangeCounts | null;
}

/**
 * Where the listing ends: the model's first commit, the `--max` limit, the
 * generations gc removed, or a damaged chain (`missing`/`corrupt`, exit 6).
 */
export type LogEnd = "first" | "limit" | "pruned" | "missing" | "corrupt";

/** The `log` result. */
export interface LogResult {
  schema: "modelsync.log/1";
  model: string;
  generations: LogEntry[];
  end: LogEnd;
  /** The end's explanation, for `missing` and `corrupt`. */
  problem?: string;
  /** Not printed in JSON. */
  exitCode: number;
}

/** Lists the history of `model`, at most `max` generations. Unknown model: exit 3. */
export async function runLog(
  s: Session,
  model: ModelRef,
  opts: { max?: number },
): Promise<LogResult> {
  const key = formatRef(model);
  const signal = s.signal;
  const head = await s.provider.getManifest(model, { signal });
  if (head === null) {
    const orphans = await listHistoryKeys(s.provider.provider, model, { signal });
    throw new NotFoundError(
      `Model ${key} is not in the datastore${
        orphans.length > 0 ? ` (it has ${orphans.length} uncommitted history records)` : ""
      }: check the name ("modelsync status --remote" lists the models).`,
    );
  }
  // One more than asked, to compare the last one shown with its parent.
  const limit = opts.max === undefined ? undefined : opts.max + 1;
  const walk = await walkHistory(s.provider.provider, model, {
    head,
    signal,
    ...(limit === undefined ? {} : { limit }),
  });
  const shown = opts.max === undefined ? walk.entries : walk.entries.slice(0, opts.max);
  const generations = shown.map((e, i): LogEntry => {
    const m = e.manifest;
    const parentEntry = walk.entries[i + 1]?.manifest;
    let changes: ChangeCounts | null = null;
    if (m.parent === null) changes = changesFrom(m, null);
    else if (parentEntry !== undefined) changes = changesFrom(m, parentEntry);
    return {
      generation: m.generation,
      commit: m.commit,
      parent: m.parent,
      committedAt: m.committedAt,
      committedBy: m.committedBy,
      files: m.files.length,
      bytes: m.files.reduce((n, f) => n + f.size, 0),
      deleted: isTombstone(m),
      changes,
    };
  });
  const cut = walk.entries.length > shown.length;
  const end: LogEnd = cut ? "limit" : walk.end.kind;
  const problem = cut ? undefined : describeProblem(key, walk.end);
  if (problem !== undefined) logger("sync").error(problem);
  return {
    schema: "modelsync.log/1",
    model: key,
    generations,
    end,
    ...(problem === undefined ? {} : { problem }),
    exitCode: problem === undefined ? ExitCode.ok : ExitCode.datastore,
  };
}

function describeProblem(model: string, end: HistoryEnd): string | undefined {
  if (end.kind === "missing") {
    return `History of ${model} is broken: the record of generation ${end.generation} ` +
      `(${end.key}) is missing although gc did not remove it. Run "modelsync verify ${model}".`;
  }
  if (end.kind === "corrupt") {
    return `History of ${model} is broken at generation ${end.generation} (${end.key}): ` +
      `${end.message}. Run "modelsync verify ${model}".`;
  }
  return undefined;
}

function describeChanges(e: LogEntry): string {
  if (e.deleted) return "deleted model";
  if (e.changes === null) return "changes unknown (parent removed)";
  const c = e.changes;
  const counts = `${c.added} added, ${c.modified} modified, ${c.deleted} deleted`;
  return e.parent === null ? `${counts} (first commit)` : counts;
}

/** Human lines for `log`: one per generation, then how the listing ends. */
export function formatLog(r: LogResult): string[] {
  const rows = r.generations.map((e) => [
    String(e.generation),
    printable(e.committedAt),
    `${printable(e.committedBy.holder)}@${printable(e.committedBy.host)}`,
    `${e.files} ${e.files === 1 ? "file" : "files"}`,
    formatBytes(e.bytes),
    describeChanges(e),
  ]);
  const head = ["GEN", "COMMITTED", "BY", "FILES", "BYTES", "CHANGES"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : pad(c, widths[i]))).join("  ");
  const out = [line(head), ...rows.map(line)];
  if (r.end === "pruned") out.push("older generations removed by gc");
  else if (r.end === "limit") out.push("(more generations: raise --max)");
  else if (r.problem !== undefined) out.push(`history broken here: ${r.problem}`);
  return out;
}
