/**
 * Pushing one model: upload missing blobs and packs before any lock
 * ({@linkcode uploadBeforeLock}), then under the model's lock read the
 * head, merge and commit by compare-and-swap ({@linkcode pushModel}); on a
 * lost race, rebase when local and remote changes touch different files.
 *
 * @module
 */
import { listPaths } from "./format.ts";
import { ConflictError } from "../errors.ts";
import { logger } from "../log.ts";
import type { BaseState } from "../model/base.ts";
import { writeBase } from "../model/base.ts";
import type { StoredManifest } from "../model/commits.ts";
import { type GcMark, gcMarkMoved, readGcMark } from "../model/gc_mark.ts";
import { readLanding, removeLanding } from "../model/landing.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import type { ScanResult } from "../repo/scan.ts";
import type { Lease } from "../lock/mod.ts";
import type { ModelReport } from "./report.ts";
import type { PackWorkers } from "./pack_pool.ts";
import type { Progress } from "./progress.ts";
import type { RepoSession } from "./session.ts";
import {
  baseAfterSync,
  effectiveBase,
  entriesOf,
  fileDirClashes,
  isRollback,
  localStates,
  ownBlobs,
  packLocations,
  sameStates,
  statesOf,
} from "./states.ts";
import { type FileState, mergeStates, threeWay } from "./three_way.ts";
import {
  landingClashes,
  landRemote,
  modelDir,
  type Moved,
  type UploadItem,
  uploadMissing,
} from "./transfer.ts";
import { makeManifest } from "../model/manifest.ts";
import { joinRel } from "../model/path.ts";
import type { PackLocation } from "../model/pack.ts";
import { SharedRead } from "../async.ts";

/** Commit attempts before giving up on a model that keeps moving. */
export const MAX_COMMIT_ATTEMPTS = 5;

/** Hashes per `hasBlobs` call with `fresh` (one request each on S3: a call's deadline must fit). */
const FRESH_BATCH = 1_000;

/** What a push stored before it took any lock ({@linkcode uploadBeforeLock}). */
export interface Staged {
  /** The gc mark, read before any of this content was checked. */
  mark: GcMark;
  /** What was uploaded. */
  uploaded: Moved;
  /** Content hash → pack location of each file packed before the lock. */
  packed: Map<string, PackLocation>;
  /** Content stored as blobs of their own: found, or uploaded before the lock. */
  present: Set<string>;
  ms: number;
}

/** Every local file of a scan that has content to store (a link is stored inline in the manifest). */
export function localItems(s: RepoSession, scan: ScanResult): UploadItem[] {
  const dir = modelDir(s, scan.model);
  const items: UploadItem[] = [];
  for (const f of scan.files.values()) {
    if (f.link === undefined) {
      items.push({ sha256: f.sha256, size: f.size, file: joinRel(dir, f.path) });
    }
  }
  return items;
}

/**
 * Uploads every local file of `scan` whose content the datastore lacks,
 * before any lock is taken: blobs and packs are immutable and content-
 * addressed, so storing one early changes nothing anyone reads, and the lock
 * is then held only to read the head, merge and commit. Content the head
 * keeps in a pack (read now, without a lock, when the listing has the model:
 * `listed`) is not stored again. Whatever the commit will name among the
 * local files is then stored, unless a gc removed it since `mark` was read:
 * {@linkcode pushModel} checks that under the lock.
 */
export async function uploadBeforeLock(
  s: RepoSession,
  scan: ScanResult,
  opts: {
    mark: GcMark;
    listed: boolean;
    signal: AbortSignal;
    progress: Progress;
    /** Worker threads that build the packs (else they are built in-process). */
    packer?: PackWorkers;
  },
): Promise<Staged> {
  const started = Date.now();
  const head = opts.listed
    ? await s.provider.getManifest(scan.model, { signal: opts.signal })
    : null;
  const pack = s.config.packSmallFiles !== false;
  const files = head?.manifest.files ?? [];
  const up = await uploadMissing(s, localItems(s, scan), {
    signal: opts.signal,
    progress: opts.progress,
    // As under the lock: the head's packs keep their content (unless packing is off), and
    // content it names as blobs of their own is asked about as such.
    stored: pack ? packLocations(files) : new Map(),
    named: ownBlobs(files),
    pack,
    packer: opts.packer,
  });
  return {
    mark: opts.mark,
    uploaded: { files: up.files, bytes: up.bytes },
    packed: up.packed,
    present: new Set([...up.found, ...up.own]),
    ms: Date.now() - started,
  };
}

/**
 * The reads of the gc mark under the locks of one push run, shared: a read
 * sent after a caller's lock was taken serves every caller that asked before
 * it was sent (`SharedRead`), and one read serves a lease for as long as it
 * is held (on the global path, every model of the run). Each read needs only
 * to come after the caller's lock was taken: from then until its commit no
 * gc removes anything (design/sync.md, push step 4).
 */
export class GcMarkReads {
  readonly #shared: SharedRead<GcMark>;
  readonly #byLease = new WeakMap<Lease, Promise<GcMark>>();

  constructor(s: RepoSession) {
    this.#shared = new SharedRead(() => readGcMark(s.provider.provider, { signal: s.signal }));
  }

  /** The gc mark as read while `lease` is held. */
  underLock(lease: Lease): Promise<GcMark> {
    let read = this.#byLease.get(lease);
    if (read === undefined) {
      read = this.#shared.read();
      this.#byLease.set(lease, read);
      read.catch(() => this.#byLease.delete(lease));
    }
    return read;
  }
}

/**
 * Under the lock, when the gc mark moved since {@linkcode uploadBeforeLock}
 * read it: a gc removed blobs meanwhile, so the blobs and packs stored or
 * found before the lock that the head does not name (every gc keeps what a
 * head names) are asked about again, of the store itself, and what is gone
 * is forgotten: the upload under the lock stores it again. Returns how many
 * were gone.
 */
async function forgetRemoved(
  s: RepoSession,
  opts: {
    head: StoredManifest | null;
    packed: Map<string, PackLocation>;
    present: Set<string>;
    signal: AbortSignal;
  },
): Promise<number> {
  const named = new Set<string>();
  for (const f of opts.head?.manifest.files ?? []) {
    if (f.link !== undefined) continue;
    named.add(f.sha256);
    if (f.pack !== undefined) named.add(f.pack.blob);
  }
  const ask = new Set([...opts.present, ...[...opts.packed.values()].map((at) => at.blob)]);
  for (const h of named) ask.delete(h);
  const hashes = [...ask];
  const still = new Set<string>();
  for (let i = 0; i < hashes.length; i += FRESH_BATCH) {
    const batch = hashes.slice(i, i + FRESH_BATCH);
    for (const h of await s.provider.hasBlobs(batch, { signal: opts.signal, fresh: true })) {
      still.add(h);
    }
  }
  const gone = new Set(hashes.filter((h) => !still.has(h)));
  for (const h of gone) opts.present.delete(h);
  for (const [h, at] of opts.packed) if (gone.has(at.blob)) opts.packed.delete(h);
  return gone.size;
}

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
    /** What was uploaded before the lock; absent: everything is uploaded here, under it. */
    staged?: Staged;
    /** Reads the gc mark under the lock (shared by a run's models); default: one read. */
    markUnderLock?: () => Promise<GcMark>;
  },
): Promise<ModelReport> {
  const started = Date.now() - (opts.staged?.ms ?? 0);
  const key = formatRef(model);
  const { scan, base, signal, staged } = opts;
  const local = localStates(scan.files, { base, exclude: s.config.exclude });
  const landing = await readLanding(s.repoDir, model);
  const baseStates = effectiveBase(statesOf(base?.files), { landing, local });
  let uploaded: Moved = staged?.uploaded ?? { files: 0, bytes: 0 };
  // Content this push packed (before the lock, or here), and content stored
  // as blobs of their own, kept across commit attempts: a rebase does not
  // store it again.
  const packedHere = new Map<string, PackLocation>(staged?.packed ?? []);
  const present = new Set<string>(staged?.present ?? []);
  // Whether the gc mark was read again under this lock (once is enough: no
  // gc removes anything while the lock is held), and whether it had moved.
  let markChecked = staged === undefined;
  let gcRemoved = false;
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
          items.push({ sha256: st.sha256, size: st.size, file: joinRel(dir, p) });
        }
      }
      // Stored before the lock (staged): only a gc since can have removed
      // some of it (push step 4 in design/sync.md).
      if (!markChecked) {
        markChecked = true;
        const now = await (opts.markUnderLock?.() ?? readGcMark(s.provider.provider, { signal }));
        if (gcMarkMoved(staged!.mark, now)) {
          gcRemoved = true;
          const gone = await forgetRemoved(s, {
            head: remote,
            packed: packedHere,
            present,
            signal,
          });
          logger("sync").info(
            `A gc removed blobs while ${key} was pushed: ${gone} of those stored or found ` +
              `before the lock were gone; they are stored again.`,
          );
        }
      }
      // Content the head already keeps in a pack stays where it is, and so
      // does content stored before the lock (not asked about again); with
      // packSmallFiles: false (pre-pack clients share the datastore), what
      // this repository holds becomes blobs of their own instead. Without
      // staging, everything is uploaded here.
      const pack = s.config.packSmallFiles !== false;
      const stored = pack
        ? new Map([...packLocations(remoteStates.values()), ...packedHere])
        : new Map<string, PackLocation>();
      // Content the head names as blobs of their own (large files; files pushed before packs).
      const named = ownBlobs(remoteStates.values());
      const moved = await uploadMissing(s, items, {
        signal,
        progress: opts.progress,
        stored,
        named,
        present,
        pack,
        // After a gc, a provider's memory of what is stored may be stale.
        fresh: gcRemoved,
      });
      // Content whose pack is gone was stored again: packed anew, or as a blob of its own.
      for (const [h, at] of stored) if (moved.lostPacks.has(at.blob)) stored.delete(h);
      for (const [h, at] of moved.packed) {
        stored.set(h, at);
        packedHere.set(h, at);
      }
      for (const h of [...moved.found, ...moved.own]) present.add(h);
      uploaded = { files: uploaded.files + moved.files, bytes: uploaded.bytes + moved.bytes };
      await opts.lease.confirm();
      try {
        // One compare-and-swap on the head read: the new generation may be
        // above the next one (above a base the datastore lost).
        const draft = makeManifest(
          model,
          nextGen,
          entriesOf(withoutPacks(target, pack ? moved.lostPacks : "all", items, stored), stored),
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
 * content this push stored (`items`), nor those `stored` places elsewhere
 * (where this push checked or put that content: before its lock, a lost
 * pack's content is packed anew without the head's pack being named as
 * lost), so `entriesOf` names the place `stored` says. A remote state whose
 * content is not here keeps its location (for a lost pack, readers fall back
 * to a blob of its own).
 */
function withoutPacks(
  target: ReadonlyMap<string, FileState>,
  lost: ReadonlySet<string> | "all",
  items: readonly UploadItem[],
  stored: ReadonlyMap<string, PackLocation>,
): ReadonlyMap<string, FileState> {
  const again = new Set(items.map((it) => it.sha256));
  const out = new Map(target);
  for (const [p, st] of target) {
    if (st.pack === undefined || !again.has(st.sha256)) continue;
    const elsewhere = stored.get(st.sha256);
    if (
      lost === "all" || lost.has(st.pack.blob) ||
      (elsewhere !== undefined && elsewhere.blob !== st.pack.blob)
    ) {
      const { pack: _pack, ...rest } = st;
      out.set(p, rest);
    }
  }
  return out;
}
