/**
 * Conflicts keep both sides: the version a pull does not land is saved under
 * `.modelsync/conflicts/` (never synced, never removed automatically), so the
 * user can compare and resolve. A stopped pull saves the datastore's version
 * of each conflicting file; `--theirs` saves the local file before it is
 * replaced or removed; `--ours` saves the datastore's version it did not
 * take. Each save goes to a new directory
 * `.modelsync/conflicts/TYPE/ID/STAMP-genG-SIDE/` (STAMP: UTC time to the
 * millisecond; G: the datastore generation pulled; SIDE: `theirs` or
 * `ours`), created exclusively, so repeated conflicts never overwrite each
 * other. Downloads are hash-checked like any download.
 *
 * @module
 */
import path from "node:path";
import { ConflictError } from "../errors.ts";
import { logger } from "../log.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import { downloadToTmp } from "../repo/apply.ts";
import { runPool } from "../async.ts";
import type { SavedCopies } from "./report.ts";
import type { RepoSession } from "./session.ts";
import type { FileState } from "./three_way.ts";
import { modelDir, openContent } from "./transfer.ts";

export type { SavedCopies } from "./report.ts";

/** The folder of saved copies, relative to the repository. */
export const CONFLICTS_DIR = ".modelsync/conflicts";

/** A pull conflict that saved the datastore's versions of the conflicting files. */
export class SavedConflictError extends ConflictError {
  readonly saved?: SavedCopies;
  constructor(
    message: string,
    opts: { current?: number; paths?: string[]; saved?: SavedCopies },
  ) {
    super(message, opts);
    this.saved = opts.saved;
  }
}

/** UTC time as `20261126T052046.915Z`: sortable, and a valid file name everywhere. */
function stamp(now: Date): string {
  return now.toISOString().replace(/[-:]/g, "");
}

/** Creates a new, empty directory for one save; never reuses an existing one. */
async function freshDir(
  s: RepoSession,
  model: ModelRef,
  opts: { generation: number; side: "theirs" | "ours" },
): Promise<{ abs: string; rel: string }> {
  const relParent = path.posix.join(CONFLICTS_DIR, ...model.type.split("/"), model.id);
  const absParent = path.join(s.repoDir, ...relParent.split("/"));
  await Deno.mkdir(absParent, { recursive: true });
  const base = `${stamp(new Date())}-gen${opts.generation}-${opts.side}`;
  for (let n = 0;; n++) {
    const name = n === 0 ? base : `${base}.${n}`;
    try {
      await Deno.mkdir(path.join(absParent, name));
      return { abs: path.join(absParent, name), rel: `${relParent}/${name}` };
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
  }
}

async function place(dir: string, rel: string): Promise<string> {
  const target = path.join(dir, ...rel.split("/"));
  await Deno.mkdir(path.dirname(target), { recursive: true });
  return target;
}

/**
 * Saves the datastore's version of `paths` (those present in `remote`):
 * each blob is downloaded into `.modelsync/tmp/`, hash-checked, and renamed
 * into the new directory. A file that cannot be saved is reported as a
 * warning; the rest are still saved. Returns what was saved, or undefined
 * when there was nothing to save.
 */
export async function saveTheirs(
  s: RepoSession,
  model: ModelRef,
  opts: {
    paths: readonly string[];
    remote: ReadonlyMap<string, FileState>;
    generation: number;
    signal: AbortSignal;
  },
): Promise<SavedCopies | undefined> {
  const paths = opts.paths.filter((p) => opts.remote.has(p));
  if (paths.length === 0) return undefined;
  const dir = await freshDir(s, model, { generation: opts.generation, side: "theirs" });
  const saved: string[] = [];
  await runPool(paths, { jobs: s.jobs, signal: opts.signal }, async (p) => {
    const st = opts.remote.get(p)!;
    try {
      const stream = await openContent(s, st, { signal: opts.signal });
      const tmp = await downloadToTmp(s.repoDir, stream, st, {
        signal: opts.signal,
        what: { model, path: p },
      });
      const target = await place(dir.abs, p);
      await Deno.chmod(tmp, st.executable ? 0o755 : 0o644);
      await Deno.rename(tmp, target);
      saved.push(p);
    } catch (err) {
      opts.signal.throwIfAborted();
      logger("sync").warn(
        `Could not save the datastore's version of ${p} of ${formatRef(model)} in ${dir.rel}/: ${
          err instanceof Error ? err.message : String(err)
        }`,
      );
    }
  });
  return { dir: dir.rel, side: "theirs", paths: saved.sort() };
}

/**
 * Saves this repository's version of `paths` (regular files only) by copy,
 * before `--theirs` replaces or removes them. A file that cannot be copied
 * stops the pull (its version would otherwise be destroyed).
 */
export async function saveOurs(
  s: RepoSession,
  model: ModelRef,
  opts: { paths: readonly string[]; generation: number },
): Promise<SavedCopies | undefined> {
  const src = modelDir(s, model);
  const present: string[] = [];
  for (const p of opts.paths) {
    const info = await Deno.lstat(path.join(src, ...p.split("/"))).catch(() => null);
    if (info?.isFile) present.push(p);
  }
  if (present.length === 0) return undefined;
  const dir = await freshDir(s, model, { generation: opts.generation, side: "ours" });
  for (const p of present) {
    await Deno.copyFile(path.join(src, ...p.split("/")), await place(dir.abs, p));
  }
  return { dir: dir.rel, side: "ours", paths: present.sort() };
}
