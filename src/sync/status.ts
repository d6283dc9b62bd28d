/**
 * `status`: local changes per model, and with --remote whether the datastore
 * is ahead. Takes no datastore lock; it writes only fresh mtimes into the
 * base (when the repository is free), never data.
 *
 * @module
 */
import { LockTimeoutError, NotFoundError } from "../errors.ts";
import { logger } from "../log.ts";
import { type BaseState, listBaseModels, readBase, writeBase } from "../model/base.ts";
import { type LandingState, readLanding } from "../model/landing.ts";
import { acquireRepoLock } from "../repo/repo_lock.ts";
import { sameState } from "./three_way.ts";
import { formatRef, type ModelRef, sortUniqueRefs } from "../model/ref.ts";
import { listLocalModels, type ScanResult } from "../repo/scan.ts";
import { type Prescan, scanInWorkers, scanWorkerCount } from "../repo/scan_pool.ts";
import { unpackScan } from "../repo/packed_scan.ts";
import type { ManifestListing } from "../model/commits.ts";
import type { Datastore } from "../provider/datastore.ts";
import { matchesRefPatterns } from "../model/ref_pattern.ts";
import { runPool } from "../async.ts";
import { ExitCode } from "../errors.ts";
import { printable } from "../provider/stale.ts";
import type { RepoWorkspace } from "./session.ts";
import { describeUnsyncable, isRollback, refreshedBase, scanAgainst } from "./states.ts";
import { requireDataDir } from "./data_dir.ts";

/**
 * Remote state of a model relative to its base: `diverged` is a datastore
 * whose manifest differs but is not newer than the base (restored from a
 * backup, or rewritten by hand).
 */
export type RemoteState = "same" | "ahead" | "diverged" | "new" | "deleted" | "absent";

/** One model's status. */
export interface ModelStatusReport {
  model: string;
  local: { added: string[]; modified: string[]; deleted: string[] };
  /** Generation of the base, or null when never synced. */
  base: number | null;
  /**
   * Entries that cannot be synced (a name that is not valid UTF-8, a link
   * leaving the model, ...), each with why: push refuses the model until
   * they are fixed. Sorted by path; `runStatus` always sets it (empty when none).
   */
  unsyncable?: { path: string; problem: string }[];
  /**
   * Present (true) when every file of the model is gone here: a push commits
   * the deletion only for a named model or with --allow-delete.
   */
  wholeModelDeleted?: true;
  remote?: { generation: number | null; state: RemoteState };
}

/** The `status` result. */
export interface StatusResult {
  schema: "modelsync.status/1";
  models: ModelStatusReport[];
}

/** Exit code of `status --exit-code` when anything changed (README, "Exit codes"). */
export const CHANGES_EXIT_CODE = 10;

/**
 * Computes the status of the named models, or of every local or synced
 * model. Offline unless `remote` is given: then the datastore is listed once
 * (models outside `models:` of modelsync.yaml only if named or synced here).
 */
export async function runStatus(
  s: RepoWorkspace,
  opts: { models?: ModelRef[]; remote?: Datastore },
): Promise<StatusResult> {
  await requireDataDir(s.repoDir, s.config.dataDir);
  const provider = opts.remote;
  let models: ModelRef[];
  const named = opts.models !== undefined && opts.models.length > 0;
  if (named) models = sortUniqueRefs(opts.models!);
  else {
    const local = await listLocalModels(s.repoDir, s.config.dataDir);
    for (const w of local.warnings) logger("repo").warn(w);
    models = sortUniqueRefs([...local.models, ...await listBaseModels(s.repoDir)]);
  }
  if (provider === undefined) {
    logger("sync").debug(
      "status: local changes only; the datastore is not opened (--remote opens it).",
    );
  }
  const listing = provider
    ? new Map(
      (await provider.listManifests({ signal: s.signal })).map((l) => [formatRef(l.model), l]),
    )
    : undefined;
  if (listing !== undefined && !named) {
    const sparse = s.config.models;
    const remoteOnly = [...listing.values()].map((l) => l.model).filter((m) =>
      sparse === undefined || sparse.length === 0 || matchesRefPatterns(formatRef(m), sparse)
    );
    models = sortUniqueRefs([...models, ...remoteOnly]);
  }
  // Many models: scanned on worker threads, as push does (src/repo/scan_pool.ts).
  const workers = named ? 0 : scanWorkerCount(models.length);
  const scanned = workers === 0 ? new Map<string, Prescan>() : await scanInWorkers(
    s.repoDir,
    models,
    {
      dataDir: s.config.dataDir,
      exclude: s.config.exclude,
      symlinks: s.config.symlinks,
      workers,
      hashConcurrency: s.jobs,
      signal: s.signal,
    },
  );
  const refresh: { model: ModelRef; base: BaseState; scan: ScanResult }[] = [];
  const reports = await runPool(
    models,
    { jobs: Math.max(4, s.jobs), signal: s.signal },
    async (model) => {
      const key = formatRef(model);
      const pre = scanned.get(key);
      scanned.delete(key);
      if (pre?.kind === "unchanged" && (await readLanding(s.repoDir, model)) === null) {
        // Matches its base exactly: only the remote side is left to report.
        const base = { generation: pre.generation, version: pre.version };
        const report: ModelStatusReport = {
          model: key,
          local: { added: [], modified: [], deleted: [] },
          base: pre.generation,
          unsyncable: [],
        };
        if (listing !== undefined) {
          report.remote = await remoteState(s, provider!, { model, base, listing });
        }
        return report;
      }
      const base = pre?.kind === "scanned" ? pre.base : await readBase(s.repoDir, model);
      const scan = pre?.kind === "scanned"
        ? unpackScan(pre.scan)
        : await scanAgainst(s, model, { base });
      if (named && !scan.exists && base === null && !listing?.has(key)) {
        throw new NotFoundError(
          `Model ${key} has no directory in ${s.config.dataDir}/ and was never synced: check the name.`,
        );
      }
      const landing = await readLanding(s.repoDir, model);
      const local = landing === null ? scan.changes : withoutLanded(scan, landing);
      for (const skipped of scan.skipped) logger("repo").warn(`Skipped ${key}/${skipped}`);
      const report: ModelStatusReport = {
        model: key,
        local,
        base: base?.generation ?? null,
        unsyncable: scan.unsyncable,
      };
      if (scan.files.size === 0 && local.deleted.length > 0) report.wholeModelDeleted = true;
      const clean = local.added.length + local.modified.length + local.deleted.length === 0;
      if (clean && landing === null && scan.hashed > 0 && base !== null) {
        refresh.push({ model, base, scan });
      }
      if (listing !== undefined) {
        report.remote = await remoteState(s, provider!, { model, base, listing });
      }
      return report;
    },
  );
  await refreshBases(s, refresh);
  return { schema: "modelsync.status/1", models: reports };
}

/** How the datastore's state of a model compares with the base. */
async function remoteState(
  s: RepoWorkspace,
  provider: Datastore,
  at: {
    model: ModelRef;
    base: { generation: number; version: string } | null;
    listing: ReadonlyMap<string, ManifestListing>;
  },
): Promise<NonNullable<ModelStatusReport["remote"]>> {
  const { model, base, listing } = at;
  const listed = listing.get(formatRef(model));
  if (listed === undefined) return { generation: null, state: "absent" };
  if (base !== null && listed.version === base.version) {
    return { generation: base.generation, state: "same" };
  }
  const remote = await provider.getManifest(model, { signal: s.signal });
  const generation = remote?.manifest.generation ?? null;
  // The same generation under a new token with the same files (a copied
  // datastore) is the same state; with other files it went back.
  if (base !== null && remote !== null && generation === base.generation) {
    const full = await readBase(s.repoDir, model);
    if (full !== null && !isRollback(full, remote)) return { generation, state: "same" };
  }
  return {
    generation,
    state: base === null
      ? "new"
      : remote !== null && remote.manifest.files.length === 0
      ? "deleted"
      : generation !== null && generation <= base.generation
      ? "diverged"
      : "ahead",
  };
}

/**
 * Records fresh mtimes for files that were hashed and found unchanged, like
 * git's index refresh — only when no other modelsync process is working in
 * the repository (status never waits for one).
 */
async function refreshBases(
  s: RepoWorkspace,
  items: readonly { model: ModelRef; base: BaseState; scan: ScanResult }[],
): Promise<void> {
  if (items.length === 0) return;
  let lock;
  try {
    lock = await acquireRepoLock(s.repoDir, {
      operation: "status",
      timeoutMs: 0,
      signal: s.signal,
    });
  } catch (err) {
    if (err instanceof LockTimeoutError) return;
    throw err;
  }
  try {
    for (const it of items) {
      // Another process may have synced since the scan: never write an older base.
      const now = await readBase(s.repoDir, it.model);
      if (now?.version !== it.base.version || now.syncedAtMs !== it.base.syncedAtMs) continue;
      await writeBase(s.repoDir, it.model, refreshedBase(it.base, it.scan));
    }
  } finally {
    await lock.release();
  }
}

/** Drops changes that an interrupted sync's landing journal explains. */
function withoutLanded(
  scan: ScanResult,
  landing: ReadonlyMap<string, LandingState>,
): ModelStatusReport["local"] {
  const ours = (p: string) => {
    if (!landing.has(p)) return false;
    const l = scan.files.get(p);
    return sameState(l === undefined ? undefined : l, landing.get(p) ?? undefined);
  };
  return {
    added: scan.changes.added.filter((p) => !ours(p)),
    modified: scan.changes.modified.filter((p) => !ours(p)),
    deleted: scan.changes.deleted.filter((p) => !ours(p)),
  };
}

/**
 * `status --exit-code`: {@linkcode CHANGES_EXIT_CODE} when a model has
 * local changes or, with --remote, the datastore differs from what was
 * synced here; else 0.
 */
export function statusExitCode(result: StatusResult): number {
  const changed = result.models.some((m) =>
    m.local.added.length + m.local.modified.length + m.local.deleted.length > 0 ||
    (m.remote !== undefined && m.remote.state !== "same" &&
      !(m.remote.state === "absent" && m.base === null))
  );
  return changed ? CHANGES_EXIT_CODE : ExitCode.ok;
}

/** Colours for `status` lines. */
export interface StatusPaint {
  status(kind: string, text: string): string;
}

const PLAIN: StatusPaint = { status: (_k, t) => t };

/**
 * Human lines for `status`: a line per model, and under a changed one a
 * line per file, `A` added, `M` modified, `D` deleted (as `git status
 * --short`), sorted by path.
 */
export function formatStatus(result: StatusResult, opts: { paint?: StatusPaint } = {}): string[] {
  const paint = opts.paint ?? PLAIN;
  if (result.models.length === 0) return ["No models."];
  const width = Math.max(...result.models.map((m) => m.model.length));
  return result.models.flatMap((m) => {
    const { added, modified, deleted } = m.local;
    const changed = added.length + modified.length + deleted.length > 0;
    const bad = m.unsyncable ?? [];
    const unsynced = bad.length === 0
      ? ""
      : `; ${bad.length} cannot be synced (push refuses the model): ${describeUnsyncable(bad)}`;
    if (!changed && m.base === null && m.remote?.state === "new" && unsynced === "") {
      return [
        `${m.model.padEnd(width)}  only in the datastore (generation ${m.remote.generation}); ` +
        `"modelsync pull ${m.model}" brings it here`,
      ];
    }
    const local = m.wholeModelDeleted
      ? `deleted here (${deleted.length} ${
        deleted.length === 1 ? "file" : "files"
      } gone); "modelsync push ${m.model}" deletes it in ` +
        `the datastore, "modelsync pull --theirs ${m.model}" brings it back`
      : changed
      ? `${added.length} added, ${modified.length} modified, ${deleted.length} deleted`
      : "clean";
    let line = `${m.model.padEnd(width)}  ${local}`;
    if (m.remote !== undefined) {
      const r = m.remote;
      line += r.state === "ahead"
        ? `; remote ahead (generation ${r.generation}, base ${m.base})`
        : r.state === "diverged"
        ? `; the datastore's generation ${r.generation} is not newer than the one synced here ` +
          `(${m.base}; restored from a backup?): "modelsync push ${m.model}" commits yours above ` +
          `both, "modelsync pull --theirs ${m.model}" takes the datastore's`
        : r.state === "deleted"
        ? `; deleted remotely (generation ${r.generation})`
        : r.state === "new"
        ? `; the datastore has generation ${r.generation}, never pulled here`
        : r.state === "absent"
        ? "; not in the datastore"
        : "; remote same";
    }
    const files = [
      ...added.map((p) => ["A", p] as const),
      ...modified.map((p) => ["M", p] as const),
      ...deleted.map((p) => ["D", p] as const),
    ].sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    return [
      line + unsynced,
      ...files.map(([k, p]) => `  ${paint.status(k, k)} ${printable(p, Infinity)}`),
    ];
  });
}
