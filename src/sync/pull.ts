/**
 * Pulling one model: three-way apply of the remote manifest onto the working
 * tree. Remote-only changes land, local-only changes stay, and paths changed
 * differently on both sides are a conflict unless --theirs or --ours. No
 * version is destroyed: the side not landed is saved under
 * `.modelsync/conflicts/` (src/sync/conflict_copies.ts). A datastore older
 * than the base (restored from a backup) is a conflict too.
 *
 * @module
 */
import { listPaths } from "./format.ts";
import { logger } from "../log.ts";
import { type BaseState, writeBase } from "../model/base.ts";
import { readLanding, removeLanding } from "../model/landing.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import { matchesExclude } from "../repo/exclude.ts";
import type { StoredManifest } from "../model/commits.ts";
import { describeSaved, type ModelReport, type SavedCopies } from "./report.ts";
import type { Progress } from "./progress.ts";
import type { RepoSession } from "./session.ts";
import {
  baseAfterSync,
  checkSyncable,
  effectiveBase,
  isRollback,
  localStates,
  scanAgainst,
  statesOf,
} from "./states.ts";
import { type FileState, sameState, threeWay } from "./three_way.ts";
import { landingClashes, landRemote, pruneEmptyModelDir } from "./transfer.ts";
import { SavedConflictError, saveOurs, saveTheirs } from "./conflict_copies.ts";
import { isWholeModelDelete } from "./delete_guard.ts";

/** How to settle paths changed on both sides. */
export type Resolution = "none" | "theirs" | "ours";

/** ` ; the datastore's version of x is saved in DIR/` or "" when nothing was saved. */
function savedClause(saved: SavedCopies | undefined): string {
  return saved === undefined || saved.paths.length === 0 ? "" : `; ${describeSaved(saved)}`;
}

/** The remedies of a pull conflict, CI-friendly first. */
function remedies(key: string): string {
  return `Keep yours with "modelsync pull --ours ${key}", then "modelsync push ${key}"; ` +
    `or take theirs with "modelsync pull --theirs ${key}" (yours is saved first).`;
}

/** Paths whose local and remote states differ (excluded paths never count). */
function differing(
  local: ReadonlyMap<string, FileState>,
  remote: ReadonlyMap<string, FileState>,
  exclude: string[],
): string[] {
  const out: string[] = [];
  for (const p of new Set([...local.keys(), ...remote.keys()])) {
    if (!sameState(local.get(p), remote.get(p)) && !matchesExclude(p, exclude)) out.push(p);
  }
  return out.sort();
}

/**
 * Pulls one model. Throws ConflictError (nothing written, the datastore's
 * versions saved) on an unresolved conflict.
 */
export async function pullModel(
  s: RepoSession,
  model: ModelRef,
  opts: { base: BaseState | null; resolution: Resolution; signal: AbortSignal; progress: Progress },
): Promise<ModelReport> {
  const started = Date.now();
  const key = formatRef(model);
  const { base, signal } = opts;
  const remote = await s.provider.getManifest(model, { signal });
  const unchanged = (generation: number | null): ModelReport => ({
    model: key,
    status: "unchanged",
    files: 0,
    bytes: 0,
    generation,
    ms: Date.now() - started,
  });
  if (remote === null) return unchanged(null);
  const sameVersion = base !== null && base.version === remote.version;
  // Same version: nothing to do, unless --theirs is to bring back a model
  // deleted here whose deletion was not pushed.
  if (sameVersion && opts.resolution !== "theirs") return unchanged(remote.manifest.generation);
  const scan = await scanAgainst(s, model, { base, signal });
  checkSyncable(scan, { push: false });
  const remoteStates = statesOf(remote.manifest.files);
  const local = localStates(scan.files, { base, exclude: s.config.exclude });
  // The same test as push's guard: the model was deleted here and not pushed.
  const restore = opts.resolution === "theirs" &&
    isWholeModelDelete(scan, base, s.config.exclude);
  if (sameVersion && !restore) return unchanged(remote.manifest.generation);
  const generation = remote.manifest.generation;
  const exclude = s.config.exclude;

  let warning: string | undefined;
  const rollback = isRollback(base, remote);
  if (rollback) {
    const back = await pullRollback(s, model, { base: base!, remote, local, resolution: opts });
    if ("report" in back) return { ...back.report, ms: Date.now() - started };
    warning = back.warning;
  }

  const landing = await readLanding(s.repoDir, model);
  const plan = threeWay({
    base: effectiveBase(statesOf(base?.files), { landing, local }),
    local,
    remote: remoteStates,
  });
  const tombstone = remote.manifest.files.length === 0;
  if (plan.conflicts.length > 0 && opts.resolution === "none") {
    const saved = await saveTheirs(s, model, {
      paths: plan.conflicts,
      remote: remoteStates,
      generation,
      signal,
    });
    const what = tombstone
      ? `generation ${generation} deleted ${key} in the datastore and this repository changed ` +
        listPaths(plan.conflicts)
      : `both this repository and generation ${generation} changed ${listPaths(plan.conflicts)}`;
    throw new SavedConflictError(
      `Cannot pull ${key}: ${what}. Nothing was changed${savedClause(saved)}. ${remedies(key)}`,
      { current: generation, paths: plan.conflicts, ...(saved ? { saved } : {}) },
    );
  }
  // --ours against a deletion: the model stays here as it is, and the base
  // moves to the tombstone, so the next push creates it again.
  if (tombstone && plan.conflicts.length > 0 && opts.resolution === "ours") {
    await writeBase(
      s.repoDir,
      model,
      baseAfterSync(model, {
        manifest: remote.manifest,
        version: remote.version,
        local: scan.files,
        syncedAtMs: scan.startedAtMs,
      }),
    );
    await removeLanding(s.repoDir, model);
    return {
      model: key,
      status: "kept",
      files: 0,
      bytes: 0,
      generation,
      ms: Date.now() - started,
      conflicts: plan.conflicts,
      warning: `Generation ${generation} deleted ${key} in the datastore; your files stay here ` +
        `(--ours) and "modelsync push ${key}" creates it again.`,
    };
  }
  // Excluded paths are never synced: remote changes to them do not land.
  // --theirs on a model deleted here (not pushed) brings every file back.
  const chosen = restore
    ? [...remoteStates.keys()]
    : opts.resolution === "theirs"
    ? [...plan.takeRemote, ...plan.conflicts]
    : plan.takeRemote;
  const take = [...new Set(chosen)].sort().filter((p) => !matchesExclude(p, exclude));
  const clashes = await landingClashes(s, model, { paths: take, remote: remoteStates, local });
  if (clashes.length > 0) {
    const saved = await saveTheirs(s, model, {
      paths: clashes,
      remote: remoteStates,
      generation,
      signal,
    });
    throw new SavedConflictError(
      `Cannot pull ${key}: generation ${generation} needs ${listPaths(clashes)} to be a file ` +
        `where this repository has a directory, or a directory where it has a file. Nothing was ` +
        `changed${savedClause(saved)}. Move your ${listPaths(clashes)} aside, then pull again.`,
      { current: generation, paths: clashes, ...(saved ? { saved } : {}) },
    );
  }
  let saved: SavedCopies | undefined;
  if (opts.resolution === "ours" && plan.conflicts.length > 0) {
    saved = await saveTheirs(s, model, {
      paths: plan.conflicts,
      remote: remoteStates,
      generation,
      signal,
    });
  }
  // --theirs saves each local version it replaces or removes: the
  // conflicting files, and after a rollback every file that differs.
  const replaced = opts.resolution !== "theirs"
    ? []
    : rollback
    ? take.filter((p) => local.has(p) && !sameState(local.get(p), remoteStates.get(p)))
    : plan.conflicts.filter((p) => local.has(p));
  const landed = await landRemote(s, model, {
    paths: take,
    remote: remoteStates,
    expectLocal: scan.files,
    signal,
    progress: opts.progress,
    ...(replaced.length > 0
      ? {
        beforeChange: async () => {
          saved = await saveOurs(s, model, { paths: replaced, generation });
        },
      }
      : {}),
  });
  if (tombstone) await pruneEmptyModelDir(s, model);
  await writeBase(
    s.repoDir,
    model,
    baseAfterSync(model, {
      manifest: remote.manifest,
      version: remote.version,
      local: scan.files,
      landed: landed.mtimes,
      syncedAtMs: scan.startedAtMs,
    }),
  );
  await removeLanding(s.repoDir, model);
  return {
    model: key,
    status: tombstone ? "deleted" : "pulled",
    files: landed.files,
    bytes: landed.bytes,
    generation,
    ms: Date.now() - started,
    ...(plan.conflicts.length > 0 ? { conflicts: plan.conflicts } : {}),
    ...(saved !== undefined && saved.paths.length > 0 ? { saved } : {}),
    ...(warning !== undefined ? { warning } : {}),
  };
}

/**
 * A datastore whose generation is not newer than the base although it
 * differs (restored from a backup): stop with a conflict naming both
 * generations, or with --ours keep every local file (the base stays, so
 * the next push commits them above both). With --theirs it returns the
 * warning: the caller then takes the datastore's state by the ordinary
 * three-way rules, saving every local file it replaces or removes.
 */
async function pullRollback(
  s: RepoSession,
  model: ModelRef,
  opts: {
    base: BaseState;
    remote: StoredManifest;
    local: ReadonlyMap<string, FileState>;
    resolution: { resolution: Resolution; signal: AbortSignal };
  },
): Promise<{ report: ModelReport } | { warning: string }> {
  const key = formatRef(model);
  const { base, remote } = opts;
  const { resolution, signal } = opts.resolution;
  const generation = remote.manifest.generation;
  const remoteStates = statesOf(remote.manifest.files);
  const paths = differing(opts.local, remoteStates, s.config.exclude);
  const older = generation < base.generation
    ? `the datastore's generation ${generation} of ${key} is older than generation ` +
      `${base.generation} synced here`
    : `the datastore's generation ${generation} of ${key} differs from the generation ` +
      `${base.generation} synced here without being newer`;
  if (resolution === "theirs") {
    const warning = `${capitalise(older)} (restored from a backup?); took it (--theirs).`;
    logger("sync").warn(warning);
    return { warning };
  }
  const saved = await saveTheirs(s, model, { paths, remote: remoteStates, generation, signal });
  if (resolution === "ours") {
    const report: ModelReport = {
      model: key,
      status: "kept",
      files: 0,
      bytes: 0,
      generation: base.generation,
      ms: 0,
      warning: `${capitalise(older)} (restored from a backup?); your files stay here (--ours) ` +
        `and "modelsync push ${key}" commits them as generation ${
          Math.max(generation, base.generation) + 1
        }.`,
      ...(saved !== undefined && saved.paths.length > 0 ? { saved } : {}),
    };
    logger("sync").warn(report.warning!);
    return { report };
  }
  throw new SavedConflictError(
    `Cannot pull ${key}: ${older} (restored from a backup?). Nothing was changed${
      savedClause(saved)
    }. Keep yours with "modelsync push ${key}" (it commits them as generation ${
      Math.max(generation, base.generation) + 1
    }), or take the datastore's with "modelsync pull --theirs ${key}" (yours is saved first).`,
    { current: generation, paths, ...(saved ? { saved } : {}) },
  );
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
