/**
 * The push, flush and pull engines over many models: discover the models,
 * take the fast paths that need no lock, upload a push's blobs before any
 * lock, and run the rest through the lock manager (per-model locks on the
 * scoped path, one global lock otherwise).
 *
 * @module
 */
import { NotFoundError } from "../errors.ts";
import { logger } from "../log.ts";
import { type BaseState, listBaseModels, readBase, writeBase } from "../model/base.ts";
import { formatRef, type ModelRef, sortUniqueRefs } from "../model/ref.ts";
import { matchesRefPatterns } from "../model/ref_pattern.ts";
import { LockManager, type LockPath } from "../lock/mod.ts";
import { cleanTmp } from "../repo/apply.ts";
import { acquireRepoLock } from "../repo/repo_lock.ts";
import { assertDataDir, listLocalModels, type ScanResult } from "../repo/scan.ts";
import { type Prescan, scanInWorkers, scanWorkerCount } from "../repo/scan_pool.ts";
import { walkHistory } from "../model/history.ts";
import type { PackLocation } from "../model/pack.ts";
import { hasPackedChanges, type PackedScan, unpackScan } from "../repo/packed_scan.ts";
import { Progress, progressOutput } from "./progress.ts";
import { modelDir, uploadMissing } from "./transfer.ts";
import { GcMarkReads, localItems, pushModel, type Staged, uploadBeforeLock } from "./push.ts";
import { readGcMark } from "../model/gc_mark.ts";
import { pullModel, type Resolution } from "./pull.ts";
import { exitCodeFor, failureReport, type ModelReport, summarize, type Summary } from "./report.ts";
import { runPool } from "../async.ts";
import { PackWorkers } from "./pack_pool.ts";
import type { RepoSession } from "./session.ts";
import { checkSyncable, isRollback, packLocations, refreshedBase, scanAgainst } from "./states.ts";
import { requireDataDir } from "./data_dir.ts";
import { deletePendingReport, isWholeModelDelete } from "./delete_guard.ts";

/** The result of push, flush or pull. */
export interface SyncResult {
  schema: string;
  /** "none" for `pull --no-lock`. */
  lockPath: LockPath | "none";
  models: ModelReport[];
  summary: Summary;
  /** Not printed in JSON. */
  exitCode: number;
}

function lockManager(s: RepoSession, operation: string): LockManager {
  return new LockManager({
    provider: s.provider,
    caps: s.capabilities.caps,
    holder: { ...s.identity, repo: s.repoDir },
    operation,
    lockTimeoutMs: s.settings.lockTimeoutMs,
    ttlMs: s.settings.lockTtlMs,
    signal: s.signal,
  });
}

/**
 * Runs `fn` under the repository lock (a lease renewed every ttl/3). `fn`
 * gets the session with a signal that also aborts when that lock is lost,
 * so the work stops instead of carrying on unlocked.
 */
export async function withRepoLock<T>(
  s: RepoSession,
  operation: string,
  fn: (s: RepoSession) => Promise<T>,
): Promise<T> {
  const lock = await acquireRepoLock(s.repoDir, {
    operation,
    timeoutMs: s.settings.lockTimeoutMs,
    ttlMs: s.settings.lockTtlMs,
    signal: s.signal,
  });
  try {
    await cleanTmp(s.repoDir);
    return await fn({ ...s, signal: AbortSignal.any([s.signal, lock.signal]) });
  } finally {
    await lock.release();
  }
}

function finish(schema: string, lockPath: LockPath | "none", reports: ModelReport[]): SyncResult {
  reports.sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : 0));
  return {
    schema,
    lockPath,
    models: reports,
    summary: summarize(reports),
    exitCode: exitCodeFor(reports),
  };
}

async function localCandidates(s: RepoSession, named: ModelRef[] | undefined): Promise<ModelRef[]> {
  if (named !== undefined && named.length > 0) return sortUniqueRefs(named);
  const { models, warnings } = await listLocalModels(s.repoDir, s.config.dataDir);
  for (const w of warnings) logger("repo").warn(w);
  return sortUniqueRefs([...models, ...await listBaseModels(s.repoDir)]);
}

/** True when `dir` is missing or holds no entries. */
async function isEmptyDir(dir: string): Promise<boolean> {
  try {
    for await (const _ of Deno.readDir(dir)) return false;
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return true;
    }
    throw err;
  }
}

/**
 * Uploads the content of an unchanged model that the datastore does not
 * have: blobs of its own that are missing, and the content of packs the head
 * names that are missing, stored as blobs of their own (readers fall back to
 * them when a pack is gone; design/format.md, "Packs").
 */
async function restoreMissingBlobs(s: RepoSession, scan: ScanResult, base: BaseState | null) {
  // A link's content is its target, stored inline in the manifest: no blob.
  const items = localItems(s, scan);
  const head = await s.provider.getManifest(scan.model, { signal: s.signal });
  // A repository behind the head holds the base's content: in the packs of
  // the generations from the head down to the base's.
  const manifests = head === null
    ? []
    : base === null || head.manifest.generation <= base.generation
    ? [head.manifest]
    : (await walkHistory(s.provider.provider, scan.model, {
      head,
      signal: s.signal,
      stop: (m) => m.generation <= base.generation,
    })).entries.map((e) => e.manifest);
  const named = manifests.flatMap((m) => [...packLocations(m.files)]);
  const packs = [...new Set(named.map(([, at]) => at.blob))];
  const present = packs.length === 0
    ? new Set<string>()
    : await s.provider.hasBlobs(packs, { signal: s.signal });
  const stored = new Map<string, PackLocation>();
  for (const [h, at] of named) if (!stored.has(h) && present.has(at.blob)) stored.set(h, at);
  return await uploadMissing(s, items, {
    signal: s.signal,
    progress: new Progress("push", { mode: "none" }),
    stored,
    pack: false,
  });
}

/**
 * Uploads the content of every changed model before any lock is taken
 * (`uploadBeforeLock`), `s.jobs` models at a time. The gc mark is read
 * first, once: each model's push reads it again under its lock. A model
 * whose uploads fail gets its report here and is not pushed. Nothing is
 * staged on a datastore that refuses every lock and commit: the lock
 * manager reports that refusal for each model, with nothing uploaded.
 */
async function stageUploads(
  s: RepoSession,
  pending: Map<string, { scan: ScanResult | PackedScan; base: BaseState | null }>,
  opts: { listed: ReadonlyMap<string, string>; progress: Progress; reports: ModelReport[] },
): Promise<Map<string, Staged>> {
  const staged = new Map<string, Staged>();
  if (s.provider.refusesWrites) return staged;
  const models = [...pending.values()].map((p) => p.scan.model);
  let mark;
  try {
    mark = await readGcMark(s.provider.provider, { signal: s.signal });
  } catch (err) {
    for (const model of models) opts.reports.push(failureReport(model, err, 0));
    pending.clear();
    return staged;
  }
  // Many new or changed files: their packs are built on worker threads.
  let changed = 0;
  for (const { scan } of pending.values()) {
    changed += "packed" in scan
      ? scan.added.length + scan.modified.length
      : scan.changes.added.length + scan.changes.modified.length;
  }
  const packer = s.config.packSmallFiles === false ? undefined : PackWorkers.forFiles(changed);
  try {
    await runPool(models, { jobs: s.jobs }, async (model) => {
      const key = formatRef(model);
      const started = Date.now();
      try {
        s.signal.throwIfAborted();
        // Unpacked for the uploads only: the packed scan stays for the commit.
        const scan = unpackScan(pending.get(key)!.scan);
        staged.set(
          key,
          await uploadBeforeLock(s, scan, {
            mark,
            listed: opts.listed.has(key),
            signal: s.signal,
            progress: opts.progress,
            packer,
          }),
        );
      } catch (err) {
        pending.delete(key);
        opts.reports.push(failureReport(model, err, Date.now() - started));
      }
    });
  } finally {
    packer?.close();
  }
  return staged;
}

/**
 * Push (or flush) every named model, or every model with local changes.
 * Models without changes are reported unchanged without touching the
 * datastore; failures of one model never stop the others.
 */
export async function runPush(
  s: RepoSession,
  opts: { models?: ModelRef[]; operation: "push" | "flush"; allowDelete?: boolean },
): Promise<SyncResult> {
  return await withRepoLock(s, opts.operation, async (s) => {
    const manager = lockManager(s, opts.operation);
    await requireDataDir(s.repoDir, s.config.dataDir);
    const named = opts.models !== undefined && opts.models.length > 0;
    // A whole-model delete (every file gone) is committed only when asked:
    // the model named on the command line, or --allow-delete.
    const mayDelete = named || opts.allowDelete === true;
    const candidates = await localCandidates(s, opts.models);
    // Many models: scanned on worker threads while the datastore is listed.
    // A named model also needs its file list (restoreMissingBlobs), so named
    // pushes scan in-process.
    const workers = named ? 0 : scanWorkerCount(candidates.length);
    const stopScan = new AbortController();
    const prescans = workers === 0 ? undefined : scanInWorkers(s.repoDir, candidates, {
      dataDir: s.config.dataDir,
      exclude: s.config.exclude,
      symlinks: s.config.symlinks,
      workers,
      hashConcurrency: s.jobs,
      signal: AbortSignal.any([s.signal, stopScan.signal]),
    });
    prescans?.catch(() => {}); // awaited below; an abort is reported there
    // One listing: a model this repository synced that the datastore no
    // longer has, or has at an older generation (restored from an older
    // backup, or a new datastore), is pushed again even without local changes.
    let listing;
    try {
      listing = await s.provider.listManifests({ signal: s.signal });
    } catch (err) {
      stopScan.abort(err); // no use scanning on
      throw err;
    }
    const listed = new Map(listing.map((l) => [formatRef(l.model), l.version]));
    const scanned = await prescans ?? new Map<string, Prescan>();
    const reports: ModelReport[] = [];
    // The datastore moved since the last sync of an unchanged model: one
    // read tells whether it went back (then the local state is pushed
    // above it) or ahead (pull's business).
    const wentBack = async (model: ModelRef, base: BaseState | null): Promise<boolean> => {
      const version = listed.get(formatRef(model));
      if (base === null || version === undefined || version === base.version) return false;
      return isRollback(base, await s.provider.getManifest(model, { signal: s.signal }));
    };
    // A changed model's scan stays packed (as the workers sent it) until its
    // turn to push: the file records of every model are never all on the heap.
    const pending = new Map<string, { scan: ScanResult | PackedScan; base: BaseState | null }>();
    await runPool(candidates, { jobs: Math.max(4, s.jobs), signal: s.signal }, async (model) => {
      const started = Date.now();
      try {
        const pre = scanned.get(formatRef(model));
        scanned.delete(formatRef(model)); // let the scan be collected once handled
        if (
          pre?.kind === "unchanged" && (pre.files === 0 || listed.has(formatRef(model))) &&
          (pre.files === 0 || listed.get(formatRef(model)) === pre.version ||
            !(await wentBack(model, await readBase(s.repoDir, model))))
        ) {
          reports.push({
            model: formatRef(model),
            status: "unchanged",
            files: pre.files,
            uploaded: 0,
            bytes: 0,
            generation: pre.generation,
            ms: Date.now() - started,
          });
          return;
        }
        const base = pre?.kind === "scanned" ? pre.base : await readBase(s.repoDir, model);
        const scan = pre?.kind === "scanned" ? pre.scan : await scanAgainst(s, model, { base });
        if (!scan.exists && base === null) {
          throw new NotFoundError(
            `Model ${
              formatRef(model)
            } has no directory in ${s.config.dataDir}/ and was never synced: check the name.`,
          );
        }
        checkSyncable(scan, { push: true });
        if (!mayDelete && isWholeModelDelete(scan, base, s.config.exclude)) {
          reports.push(deletePendingReport(model, base!, Date.now() - started));
          return;
        }
        const lost = base !== null && base.files.length > 0 && !listed.has(formatRef(model));
        if (hasPackedChanges(scan) || lost || await wentBack(model, base)) {
          pending.set(formatRef(model), { scan, base });
        } else {
          const full = unpackScan(scan);
          // Files re-hashed and found unchanged (racily clean, or touched):
          // record their mtimes so the next scan does not read them again.
          if (full.hashed > 0 && base !== null) {
            await writeBase(s.repoDir, model, refreshedBase(base, full));
          }
          // A model named on the command line is also checked for blobs the
          // datastore lost (the remedy for a corrupt or deleted blob): they
          // are stored again from the local files. Content-addressed, so no
          // lock is needed. Unnamed models cost no datastore call.
          const moved = named ? await restoreMissingBlobs(s, full, base) : { files: 0, bytes: 0 };
          reports.push({
            model: formatRef(model),
            status: moved.files > 0 ? "pushed" : "unchanged",
            files: full.files.size,
            uploaded: moved.files,
            bytes: moved.bytes,
            generation: base?.generation ?? null,
            ms: Date.now() - started,
          });
        }
      } catch (err) {
        reports.push(failureReport(model, err, Date.now() - started));
      }
    });
    logger("sync").debug(
      `${opts.operation}: ${candidates.length} local models, ${pending.size} with changes to ` +
        `commit; the datastore lists ${listing.length} models.`,
    );
    if (pending.size > 0) {
      const progress = new Progress(opts.operation, { mode: progressOutput(s.settings) });
      progress.start();
      try {
        // 1. Upload before any lock; 2. under the locks, read the head, merge, commit.
        const staged = await stageUploads(s, pending, { listed, progress, reports });
        const marks = new GcMarkReads(s);
        const changed = [...pending.values()].map((p) => p.scan.model);
        const outcomes = await manager.run(changed, (model, ctx) => {
          const p = pending.get(formatRef(model))!;
          pending.delete(formatRef(model)); // a pushed model's scan can be collected
          const scan = unpackScan(p.scan);
          const before = staged.get(formatRef(model));
          staged.delete(formatRef(model));
          return pushModel(s, model, {
            scan,
            base: p.base,
            lease: ctx.lease,
            signal: ctx.signal,
            progress,
            ...(before === undefined ? {} : { staged: before }),
            markUnderLock: () => marks.underLock(ctx.lease),
          });
        }, { jobs: s.jobs });
        for (const o of outcomes) {
          reports.push(o.ok ? o.value : failureReport(o.model, o.error, 0));
        }
      } finally {
        progress.stop();
        await manager.releaseAll();
      }
    }
    return finish(`modelsync.${opts.operation}/1`, manager.path, reports);
  });
}

/**
 * Pull every named model, or every model the datastore or the base knows.
 * One listing decides which models moved; the rest are skipped unscanned.
 * No datastore lock is taken: a head names a whole commit, moved atomically,
 * and blobs never change, so a reader never sees a partial state and
 * read-only credentials suffice (`--no-lock` is accepted and changes nothing).
 */
export async function runPull(
  s: RepoSession,
  opts: { models?: ModelRef[]; resolution: Resolution },
): Promise<SyncResult> {
  return await withRepoLock(s, "pull", async (s) => {
    await assertDataDir(s.repoDir, s.config.dataDir);
    const synced = await listBaseModels(s.repoDir);
    // A repository that synced models before needs its data folder: without
    // it every model would look deleted here. A new one gets it created.
    if (synced.length > 0) await requireDataDir(s.repoDir, s.config.dataDir);
    const listing = new Map(
      (await s.provider.listManifests({ signal: s.signal })).map((l) => [formatRef(l.model), l]),
    );
    const named = opts.models !== undefined && opts.models.length > 0;
    // A sparse repository (models: in modelsync.yaml) brings only the models
    // it names, plus the ones it already synced.
    const sparse = s.config.models ?? [];
    const candidates = named ? sortUniqueRefs(opts.models!) : sortUniqueRefs([
      ...[...listing.values()].map((l) => l.model).filter((m) =>
        sparse.length === 0 || matchesRefPatterns(formatRef(m), sparse)
      ),
      ...synced,
    ]);
    const reports: ModelReport[] = [];
    const pending = new Map<string, BaseState | null>();
    for (const model of candidates) {
      const key = formatRef(model);
      try {
        const base = await readBase(s.repoDir, model);
        const listed = listing.get(key);
        if (listed === undefined) {
          if (named && base === null) {
            throw new NotFoundError(
              `Model ${key} is not in the datastore: check the name, or push it first.`,
            );
          }
          reports.push({
            model: key,
            status: "unchanged",
            files: 0,
            bytes: 0,
            generation: base?.generation ?? null,
            ms: 0,
          });
        } else if (
          base !== null && base.version === listed.version &&
          !(opts.resolution === "theirs" && base.files.length > 0 &&
            await isEmptyDir(modelDir(s, model)))
        ) {
          // (--theirs also brings back a model deleted here and not pushed.)
          reports.push({
            model: key,
            status: "unchanged",
            files: 0,
            bytes: 0,
            generation: base.generation,
            ms: 0,
          });
        } else {
          pending.set(key, base);
        }
      } catch (err) {
        reports.push(failureReport(model, err, 0));
      }
    }
    logger("sync").debug(
      `pull: the datastore lists ${listing.size} models; ${candidates.length} considered` +
        `${sparse.length > 0 ? ` (models: ${sparse.join(", ")})` : ""}, ${pending.size} moved.`,
    );
    if (pending.size > 0) {
      const progress = new Progress("pull", { mode: progressOutput(s.settings) });
      progress.start();
      try {
        const models = candidates.filter((m) => pending.has(formatRef(m)));
        // No pool signal: an interrupt is reported per model, as push does.
        await runPool(models, { jobs: s.jobs }, async (model) => {
          try {
            s.signal.throwIfAborted();
            reports.push(
              await pullModel(s, model, {
                base: pending.get(formatRef(model)) ?? null,
                resolution: opts.resolution,
                signal: s.signal,
                progress,
              }),
            );
          } catch (err) {
            reports.push(failureReport(model, err, 0));
          }
        });
      } finally {
        progress.stop();
      }
    }
    return finish("modelsync.pull/1", "none", reports);
  });
}
