/**
 * Pushing one model: upload missing blobs, then commit by compare-and-swap;
 * on a lost race, rebase when local and remote changes touch different files.
 *
 * @module
 */
import { listPaths } from "./format.ts";
import path from "node:path";
import { ConflictError } from "../errors.ts";
import { logger } from "../log.ts";
import type { BaseState } from "../model/base.ts";
import { writeBase } from "../model/base.ts";
import { readLanding, removeLanding } from "../model/landing.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import type { ScanResult } from "../repo/scan.ts";
import type { Lease } from "../lock/mod.ts";
import type { ModelReport } from "./report.ts";
import type { Progress } from "./progress.ts";
import type { RepoSession } from "./session.ts";
import {
  baseAfterSync,
  effectiveBase,
  entriesOf,
  fileDirClashes,
  isRollback,
  localStates,
  packLocations,
  sameStates,
  statesOf,
} from "./states.ts";
import { type FileState, mergeStates, threeWay } from "./three_way.ts";
import {
  landingClashes,
  landRemote,
  modelDir,
  type UploadItem,
  uploadMissing,
} from "./transfer.ts";
import { makeManifest } from "../model/manifest.ts";
import type { PackLocation } from "../model/pack.ts";

/** Commit attempts before giving up on a model that keeps moving. */
export const MAX_COMMIT_ATTEMPTS = 5;

/**
 * Pushes one model whose local state is `scan`, relative to `base`, while
 * holding `lease`. Throws ConflictError when both sides changed the same file.
 */
export async function pushModel(
  s: RepoSession,
  model: ModelRef,
  opts: {
    scan: ScanResult;
    base: BaseState | null;
    lease: Lease;
    signal: AbortSignal;
    progress: Progress;
  },
): Promise<ModelReport> {
  const started = Date.now();
  const key = formatRef(model);
  const { scan, base, signal } = opts;
  const local = localStates(scan.files, { base, exclude: s.config.exclude });
  const landing = await readLanding(s.repoDir, model);
  const baseStates = effectiveBase(statesOf(base?.files), { landing, local });
  let uploaded = { files: 0, bytes: 0 };
  // Content this push packed, kept across commit attempts: a rebase does not pack it again.
  const packedHere = new Map<string, PackLocation>();
  for (let attempt = 1; attempt <= MAX_COMMIT_ATTEMPTS; attempt++) {
    signal.throwIfAborted();
    const remote = await s.provider.getManifest(model, { signal });
    const remoteGen = remote?.manifest.generation ?? 0;
    const remoteStates = statesOf(remote?.manifest.files);
    let target = local;
    let takeRemote: string[] = [];
    let rebased = false;
    // The generation this commit will have: the next one, or above the base
    // when the datastore went back (restored from an older backup), so that
    // the model's generation never goes backwards for anyone who synced it.
    let nextGen = remoteGen + 1;
    let warning: string | undefined;
    const wentBack = isRollback(base, remote) ||
      (remote === null && base !== null && base.generation > 0);
    if (wentBack) {
      nextGen = Math.max(remoteGen, base!.generation) + 1;
      warning = remote === null
        ? `The datastore has no manifest for ${key} although this repository synced generation ` +
          `${base!.generation} (restored from an older backup?); committing the local state as ` +
          `generation ${nextGen}.`
        : `The datastore's generation ${remoteGen} of ${key} is not newer than generation ` +
          `${base!.generation} synced here (restored from a backup?); committing the local state ` +
          `as generation ${nextGen}, above both.`;
    } else if (remote !== null && remote.version !== base?.version) {
      const input = { base: baseStates, local, remote: remoteStates };
      const plan = threeWay(input);
      if (plan.conflicts.length > 0) {
        throw new ConflictError(
          `Cannot push ${key}: the datastore moved to generation ${remoteGen} (base ${
            base?.generation ?? "none"
          }) ` +
            `and both sides changed ${listPaths(plan.conflicts)}. Run "modelsync pull ${key}" ` +
            `(it saves the datastore's version under .modelsync/conflicts/), resolve, then push; ` +
            `or keep yours with "modelsync pull --ours ${key}", then "modelsync push ${key}".`,
          { current: remoteGen, paths: plan.conflicts },
        );
      }
      target = mergeStates(input, plan, { theirs: false });
      const clashes = fileDirClashes(target);
      if (clashes.length > 0) {
        throw new ConflictError(
          `Cannot push ${key}: after merging generation ${remoteGen}, ${
            listPaths(clashes)
          } would be ` +
            `both a file and a directory. Run "modelsync pull ${key}", move one aside, then push.`,
          { current: remoteGen, paths: clashes },
        );
      }
      takeRemote = plan.takeRemote;
      const blocked = await landingClashes(s, model, {
        paths: takeRemote,
        remote: remoteStates,
        local,
      });
      if (blocked.length > 0) {
        throw new ConflictError(
          `Cannot push ${key}: generation ${remoteGen} needs ${listPaths(blocked)} to be a file ` +
            `where this repository has a directory, or a directory where it has a file. Nothing ` +
            `was committed. Move your ${listPaths(blocked)} aside, then push again.`,
          { current: remoteGen, paths: blocked },
        );
      }
      rebased = true;
    }
    if (warning !== undefined) logger("sync").warn(warning);
    let committed = remote?.manifest;
    let version = remote?.version ?? "";
    let generation: number | null = remote === null ? null : remoteGen;
    const needsCommit = wentBack ||
      (remote === null ? target.size > 0 || base !== null : !sameStates(target, remoteStates));
    if (needsCommit) {
      const dir = modelDir(s, model);
      const items: UploadItem[] = [];
      for (const [p, st] of target) {
        // A link is stored inline in the manifest: no blob to upload.
        const l = scan.files.get(p);
        if (st.link === undefined && l?.link === undefined && l?.sha256 === st.sha256) {
          items.push({ sha256: st.sha256, size: st.size, file: path.join(dir, p) });
        }
      }
      // Content the head already keeps in a pack stays where it is; with
      // packSmallFiles: false (pre-pack clients share the datastore), what
      // this repository holds becomes blobs of their own instead.
      const pack = s.config.packSmallFiles !== false;
      const stored = pack
        ? new Map([...packLocations(remoteStates.values()), ...packedHere])
        : new Map<string, PackLocation>();
      // Content the head names as blobs of their own (large files; files pushed before packs).
      const named = new Set<string>();
      for (const st of remoteStates.values()) {
        if (st.link === undefined && st.pack === undefined) named.add(st.sha256);
      }
      const moved = await uploadMissing(s, items, {
        signal,
        progress: opts.progress,
        stored,
        named,
        pack,
      });
      // Content whose pack is gone was stored again: packed anew, or as a blob of its own.
      for (const [h, at] of stored) if (moved.lostPacks.has(at.blob)) stored.delete(h);
      for (const [h, at] of moved.packed) {
        stored.set(h, at);
        packedHere.set(h, at);
      }
      uploaded = { files: uploaded.files + moved.files, bytes: uploaded.bytes + moved.bytes };
      await opts.lease.confirm();
      try {
        // One compare-and-swap on the head read: the new generation may be
        // above the next one (above a base the datastore lost).
        const draft = makeManifest(
          model,
          nextGen,
          entriesOf(withoutPacks(target, pack ? moved.lostPacks : "all", items), stored),
          s.identity,
        );
        const res = await s.provider.commitManifest(model, remote, draft, { signal });
        committed = res.manifest;
        version = res.version;
        generation = res.manifest.generation;
      } catch (err) {
        if (err instanceof ConflictError && attempt < MAX_COMMIT_ATTEMPTS) {
          logger("sync").info(`Lost the commit race on ${key}; rebasing (attempt ${attempt + 1}).`);
          continue;
        }
        throw err;
      }
    }
    const landed = takeRemote.length > 0
      ? await landRemote(s, model, {
        paths: takeRemote,
        remote: remoteStates,
        expectLocal: scan.files,
        signal,
        progress: opts.progress,
      })
      : undefined;
    if (committed !== undefined) {
      await writeBase(
        s.repoDir,
        model,
        baseAfterSync(model, {
          manifest: committed,
          version,
          local: scan.files,
          ...(landed ? { landed: landed.mtimes } : {}),
          syncedAtMs: scan.startedAtMs,
        }),
      );
      await removeLanding(s.repoDir, model);
    }
    return {
      model: key,
      status: !needsCommit ? "unchanged" : committed?.files.length === 0 ? "deleted" : "pushed",
      files: committed?.files.length ?? target.size,
      uploaded: uploaded.files,
      bytes: uploaded.bytes,
      generation,
      ms: Date.now() - started,
      ...(rebased ? { rebased: true } : {}),
      ...(warning !== undefined ? { warning } : {}),
    };
  }
  throw new ConflictError(
    `Cannot push ${key}: other writers kept committing; gave up after ${MAX_COMMIT_ATTEMPTS} attempts. Retry.`,
  );
}

/**
 * `target` without the locations in `lost` packs (or in any, with "all") of
 * content this push stored (`items`); a remote state whose content is not
 * here keeps its location (for a lost pack, readers fall back to a blob of
 * its own).
 */
function withoutPacks(
  target: ReadonlyMap<string, FileState>,
  lost: ReadonlySet<string> | "all",
  items: readonly UploadItem[],
): ReadonlyMap<string, FileState> {
  if (lost !== "all" && lost.size === 0) return target;
  const again = new Set(items.map((it) => it.sha256));
  const out = new Map(target);
  for (const [p, st] of target) {
    if (
      st.pack !== undefined && (lost === "all" || lost.has(st.pack.blob)) && again.has(st.sha256)
    ) {
      const { pack: _pack, ...rest } = st;
      out.set(p, rest);
    }
  }
  return out;
}
