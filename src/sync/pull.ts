/**
 * Pulling one model: three-way apply of the remote manifest onto the working
 * tree. Remote-only changes land, local-only changes stay, and paths changed
 * differently on both sides are a conflict unless --theirs or --ours.
 *
 * @module
 */
import { listPaths } from "./format.ts";
import { ConflictError } from "../errors.ts";
import { type BaseState, writeBase } from "../model/base.ts";
import { readLanding, removeLanding } from "../model/landing.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import { matchesExclude } from "../repo/exclude.ts";
import type { ModelReport } from "./report.ts";
import type { Progress } from "./progress.ts";
import type { RepoSession } from "./session.ts";
import {
  baseAfterSync,
  checkSyncable,
  effectiveBase,
  localStates,
  scanAgainst,
  statesOf,
} from "./states.ts";
import { threeWay } from "./three_way.ts";
import { landRemote, pruneEmptyModelDir } from "./transfer.ts";

/** How to settle paths changed on both sides. */
export type Resolution = "none" | "theirs" | "ours";

/** Pulls one model. Throws ConflictError (nothing written) on an unresolved conflict. */
export async function pullModel(
  s: RepoSession,
  model: ModelRef,
  opts: { base: BaseState | null; resolution: Resolution; signal: AbortSignal; progress: Progress },
): Promise<ModelReport> {
  const started = Date.now();
  const key = formatRef(model);
  const { base, signal } = opts;
  const remote = await s.provider.getManifest(model, { signal });
  if (remote === null) {
    return {
      model: key,
      status: "unchanged",
      files: 0,
      bytes: 0,
      generation: null,
      ms: Date.now() - started,
    };
  }
  if (base !== null && base.version === remote.version) {
    return {
      model: key,
      status: "unchanged",
      files: 0,
      bytes: 0,
      generation: remote.manifest.generation,
      ms: Date.now() - started,
    };
  }
  const scan = await scanAgainst(s, model, { base, signal });
  checkSyncable(scan, { push: false });
  const remoteStates = statesOf(remote.manifest.files);
  const local = localStates(scan.files, { base, exclude: s.config.exclude });
  const landing = await readLanding(s.repoDir, model);
  const plan = threeWay({
    base: effectiveBase(statesOf(base?.files), { landing, local }),
    local,
    remote: remoteStates,
  });
  if (plan.conflicts.length > 0 && opts.resolution === "none") {
    throw new ConflictError(
      `Cannot pull ${key}: both this repository and generation ${remote.manifest.generation} changed ` +
        `${
          listPaths(plan.conflicts)
        }. Nothing was changed. Keep yours with "modelsync pull --ours ${key}" ` +
        `or take theirs with "modelsync pull --theirs ${key}".`,
      { current: remote.manifest.generation, paths: plan.conflicts },
    );
  }
  // Excluded paths are never synced: remote changes to them do not land.
  const take =
    (opts.resolution === "theirs"
      ? [...plan.takeRemote, ...plan.conflicts].sort()
      : plan.takeRemote)
      .filter((p) => !matchesExclude(p, s.config.exclude));
  const landed = await landRemote(s, model, {
    paths: take,
    remote: remoteStates,
    expectLocal: scan.files,
    signal,
    progress: opts.progress,
  });
  if (remote.manifest.files.length === 0) await pruneEmptyModelDir(s, model);
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
    status: remote.manifest.files.length === 0 ? "deleted" : "pulled",
    files: landed.files,
    bytes: landed.bytes,
    generation: remote.manifest.generation,
    ms: Date.now() - started,
    ...(plan.conflicts.length > 0 ? { conflicts: plan.conflicts } : {}),
  };
}
