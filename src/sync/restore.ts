/**
 * `restore MODEL@N`: makes the working copy of a model equal to generation
 * N of its history, so that the next `push` commits it as a new generation
 * above the head (design/history.md). History is never rewritten:
 * only the working copy and the base change.
 *
 * Takes the repository lock (as pull does) and no datastore lock: it only
 * reads the datastore. Files land as in a pull (hash-checked downloads,
 * atomic rename, never through a symlink, the landing journal). The base
 * becomes the current head, so `push` sees "remote unchanged since the
 * base, local changed" and commits generation N's files anew.
 *
 * A local change (relative to the base) that restore would overwrite or
 * remove, and that the head does not hold either, stops it with exit 4
 * unless `--force`; with `--force` those files are first saved under
 * `.modelsync/restore-saved/TYPE/ID/STAMP/`.
 *
 * @module
 */
import { blobOf } from "../model/pack.ts";
import { join, relative } from "node:path";
import { ConflictError, CorruptError, NotFoundError } from "../errors.ts";
import { logger } from "../log.ts";
import { readBase, writeBase } from "../model/base.ts";
import { walkHistory } from "../model/history.ts";
import { readLanding, removeLanding } from "../model/landing.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import { matchesExclude } from "../repo/exclude.ts";
import { assertDataDir, type LocalFile } from "../repo/scan.ts";
import { formatBytes, listPaths } from "./format.ts";
import { Progress, progressOutput } from "./progress.ts";
import { withRepoLock } from "./run.ts";
import type { RepoSession } from "./session.ts";
import {
  baseAfterSync,
  effectiveBase,
  localStates,
  sameStates,
  scanAgainst,
  statesOf,
} from "./states.ts";
import { sameState } from "./three_way.ts";
import { landRemote, modelDir, pruneEmptyModelDir } from "./transfer.ts";

/** The `restore` result. */
export interface RestoreResult {
  schema: "modelsync.restore/1";
  model: string;
  /** The generation the working copy now equals. */
  generation: number;
  /** The head the base now names: `push` commits above it. */
  head: { generation: number; deleted: boolean };
  /** Files written and removed in the working copy, bytes downloaded. */
  written: number;
  removed: number;
  bytes: number;
  /** False when generation N equals the head: the next push has nothing to commit. */
  pushNeeded: boolean;
  /** Local versions saved before they were overwritten (`--force`). */
  saved?: { dir: string; paths: string[] };
}

/** Where `--force` saves local versions: `.modelsync/restore-saved`. */
export const SAVED_DIR = join(".modelsync", "restore-saved");

/** Restores `model` to `generation` in the working copy. */
export function runRestore(
  s: RepoSession,
  ref: { model: ModelRef; generation: number },
  opts: { force: boolean },
): Promise<RestoreResult> {
  return withRepoLock(s, "restore", () => restoreUnderLock(s, ref, opts));
}

async function restoreUnderLock(
  s: RepoSession,
  ref: { model: ModelRef; generation: number },
  opts: { force: boolean },
): Promise<RestoreResult> {
  const { model, generation } = ref;
  const key = formatRef(model);
  const signal = s.signal;
  await assertDataDir(s.repoDir, s.config.dataDir);
  const head = await s.provider.getManifest(model, { signal });
  if (head === null) {
    throw new NotFoundError(
      `Model ${key} is not in the datastore: check the name ("modelsync status --remote" lists ` +
        `the models).`,
    );
  }
  const headGen = head.manifest.generation;
  if (generation > headGen) {
    throw new NotFoundError(
      `Model ${key} has no generation ${generation}: its newest is ${headGen}. See ` +
        `"modelsync log ${key}".`,
    );
  }
  const walk = await walkHistory(s.provider.provider, model, {
    head,
    signal,
    stop: (m) => m.generation <= generation,
  });
  const found = walk.entries.at(-1)?.manifest;
  if (found === undefined || found.generation !== generation) {
    throw notInHistory(key, generation, walk.end);
  }
  const base = await readBase(s.repoDir, model);
  const scan = await scanAgainst(s, model, { base, signal });
  for (const skipped of scan.skipped) logger("repo").warn(`Skipped ${key}/${skipped}`);
  const exclude = s.config.exclude;
  const local = localStates(scan.files, { base, exclude });
  const landing = await readLanding(s.repoDir, model);
  const baseStates = effectiveBase(statesOf(base?.files), { landing, local });
  const target = statesOf(found.files);
  const headStates = statesOf(head.manifest.files);
  // Excluded paths are never synced, so a restore leaves them alone too.
  const paths = [...new Set([...local.keys(), ...target.keys()])]
    .filter((p) => !sameState(local.get(p), target.get(p)) && !matchesExclude(p, [...exclude]))
    .sort();
  // A local version is lost when restore replaces or removes it, it is a
  // local change, and the head does not hold it either (else `log` and
  // `restore` bring it back).
  const atRisk = paths.filter((p) =>
    local.has(p) && !sameState(local.get(p), baseStates.get(p)) &&
    !sameState(local.get(p), headStates.get(p))
  );
  let saved: RestoreResult["saved"];
  if (atRisk.length > 0) {
    if (!opts.force) {
      throw new ConflictError(
        `Cannot restore ${key}@${generation}: it would overwrite or remove local changes to ` +
          `${listPaths(atRisk)}. Push them first ("modelsync push ${key}"), or rerun with ` +
          `--force to save them under ${SAVED_DIR}/ and restore anyway.`,
        { paths: atRisk },
      );
    }
    saved = await saveLocal(s, model, atRisk);
  }
  const writes = paths.filter((p) => target.has(p));
  // A link is stored inline in the manifest: it has no blob.
  const downloads = writes.filter((p) => target.get(p)!.link === undefined);
  const present = await s.provider.hasBlobs(
    [...new Set(downloads.map((p) => blobOf(target.get(p)!)))],
    { signal },
  );
  let lacking = downloads.filter((p) => !present.has(blobOf(target.get(p)!)));
  // A packed file whose pack is gone is read from a blob of its own when
  // there is one (what a push of the model stores to repair a lost pack).
  const unpacked = lacking.filter((p) => target.get(p)!.pack !== undefined);
  if (unpacked.length > 0) {
    const own = await s.provider.hasBlobs(
      [...new Set(unpacked.map((p) => target.get(p)!.sha256))],
      { signal },
    );
    lacking = lacking.filter((p) =>
      target.get(p)!.pack === undefined || !own.has(target.get(p)!.sha256)
    );
  }
  if (lacking.length > 0) {
    throw new CorruptError(
      `Cannot restore ${key}@${generation}: the datastore lacks the blobs of ` +
        `${listPaths(lacking)}; nothing was changed. "modelsync log ${key}" shows whether gc ` +
        `removed that generation meanwhile; "modelsync verify ${key}" checks the rest.`,
    );
  }
  const progress = new Progress("restore", { mode: progressOutput(s.settings) });
  progress.start();
  let landed;
  try {
    landed = await landRemote(s, model, {
      paths,
      remote: target,
      expectLocal: scan.files,
      signal,
      progress,
    });
  } finally {
    progress.stop();
  }
  if (found.files.length === 0) await pruneEmptyModelDir(s, model);
  // The working copy after the restore, to record mtimes only for files
  // that hold exactly the head's state (as baseAfterSync does for a pull).
  const after = new Map<string, LocalFile>(scan.files);
  for (const p of paths) {
    const st = target.get(p);
    if (st === undefined) after.delete(p);
    else after.set(p, { path: p, ...st, mtimeMs: landed.mtimes.get(p) ?? -1 });
  }
  await writeBase(
    s.repoDir,
    model,
    baseAfterSync(model, {
      manifest: head.manifest,
      version: head.version,
      local: after,
      syncedAtMs: scan.startedAtMs,
    }),
  );
  await removeLanding(s.repoDir, model);
  const written = writes.length;
  return {
    schema: "modelsync.restore/1",
    model: key,
    generation,
    head: { generation: headGen, deleted: head.manifest.files.length === 0 },
    written,
    removed: paths.length - written,
    bytes: landed.bytes,
    pushNeeded: !sameStates(
      new Map([...target].filter(([p]) => !matchesExclude(p, [...exclude]))),
      new Map([...headStates].filter(([p]) => !matchesExclude(p, [...exclude]))),
    ),
    ...(saved === undefined ? {} : { saved }),
  };
}

function notInHistory(
  key: string,
  generation: number,
  end: Awaited<ReturnType<typeof walkHistory>>["end"],
): Error {
  if (end.kind === "pruned" && generation < end.oldestKept) {
    return new NotFoundError(
      `Generation ${generation} of ${key} was removed by "modelsync gc" (the oldest kept is ` +
        `${end.oldestKept}). See "modelsync log ${key}".`,
    );
  }
  if (end.kind === "missing" || end.kind === "corrupt") {
    return new CorruptError(
      `Cannot read generation ${generation} of ${key}: its history is broken at generation ` +
        `${end.generation} (${end.key}). Run "modelsync verify ${key}".`,
    );
  }
  return new NotFoundError(
    `Model ${key} has no generation ${generation} (generations may skip numbers). See ` +
      `"modelsync log ${key}".`,
  );
}

/**
 * Keeps the local versions of `paths` under a fresh directory of
 * `.modelsync/restore-saved/TYPE/ID/`: by hard link where possible (landing
 * renames a new file into place, so the saved link keeps the old content
 * without a copy), else by copying.
 */
async function saveLocal(
  s: RepoSession,
  model: ModelRef,
  paths: readonly string[],
): Promise<{ dir: string; paths: string[] }> {
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  const parent = join(s.repoDir, SAVED_DIR, ...model.type.split("/"), model.id);
  await Deno.mkdir(parent, { recursive: true });
  let dir = join(parent, stamp);
  for (let n = 2;; n++) {
    try {
      await Deno.mkdir(dir);
      break;
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      dir = join(parent, `${stamp}-${n}`);
    }
  }
  const src = modelDir(s, model);
  for (const p of paths) {
    const to = join(dir, ...p.split("/"));
    await Deno.mkdir(join(to, ".."), { recursive: true });
    try {
      await Deno.link(join(src, ...p.split("/")), to);
    } catch {
      await Deno.copyFile(join(src, ...p.split("/")), to);
    }
  }
  return { dir: relative(s.repoDir, dir), paths: [...paths] };
}

/** Human lines for `restore`. */
export function formatRestore(r: RestoreResult): string[] {
  const out = [
    `Restored ${r.model} to generation ${r.generation}: ${r.written} written, ${r.removed} ` +
    `removed, ${formatBytes(r.bytes)} downloaded.`,
  ];
  if (r.saved !== undefined) {
    out.push(`Saved your versions of ${listPaths(r.saved.paths)} under ${r.saved.dir}/.`);
  }
  out.push(
    r.pushNeeded
      ? `Run "modelsync push ${r.model}" to commit it as a new generation (the head is ` +
        `${r.head.generation}${r.head.deleted ? ", a deletion" : ""}).`
      : `Generation ${r.generation} holds what the head (${r.head.generation}) holds: nothing to push.`,
  );
  return out;
}
