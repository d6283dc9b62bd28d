/**
 * Shared helpers of the issue-8 end-to-end tests (no silent data loss): the
 * report fields they read, a model's generations in a filesystem datastore,
 * a simulated restore from backup, and the copies saved under
 * `.modelsync/conflicts/`.
 *
 * @module
 */
import { join } from "node:path";
import { listFiles, type ModelReport, type Repo, reportByModel, type Sandbox } from "./_helpers.ts";

/** A push / pull / flush report row with the fields of issue 8. */
export interface Row extends ModelReport {
  warning?: string;
  saved?: { dir: string; side: "theirs" | "ours"; paths: string[] };
}

/** The row of `model` in a push / pull / flush JSON report. */
export function rowOf(doc: Record<string, unknown>, model: string): Row | undefined {
  return reportByModel(doc).get(model) as Row | undefined;
}

/** The summary counts of a push / pull / flush JSON report. */
export function summaryOf(doc: Record<string, unknown>): Record<string, number> {
  return doc.summary as Record<string, number>;
}

/** Generation numbers of every manifest file of a model in a filesystem datastore, sorted. */
export async function generations(sb: Sandbox, model: string): Promise<number[]> {
  return (await sb.datastore.manifests()).filter((m) => m.model === model)
    .map((m) => m.manifest.generation).sort((x, y) => x - y);
}

/**
 * Simulates a restore from a backup taken at generation `keep` of `model`
 * on a filesystem datastore: the head holds that generation again and the
 * history records of newer ones are gone (design/format.md).
 */
export async function restoreBackup(sb: Sandbox, model: string, keep: number): Promise<void> {
  const all = (await sb.datastore.manifests()).filter((m) => m.model === model);
  const kept = all.find((m) => m.manifest.generation === keep);
  if (kept === undefined) throw new Error(`no generation ${keep} of ${model} to restore`);
  for (const m of all) {
    if (m.manifest.generation > keep) {
      await Deno.remove(join(sb.datastore.dir, m.file), { recursive: true });
    }
  }
  await sb.datastore.setHead(model, kept.manifest);
}

/** Every file under `dir` as text: relative path → content ({} when `dir` is missing). */
export async function contents(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of await listFiles(dir)) out[rel] = await Deno.readTextFile(join(dir, rel));
  return out;
}

/** Copies saved for `model` under `.modelsync/conflicts/`: relative path → content. */
export function savedCopies(repo: Repo, model: string): Promise<Record<string, string>> {
  return contents(repo.path(`.modelsync/conflicts/${model}`));
}
