/**
 * Conversions between manifests, base state and scans, and the base written
 * after a successful sync.
 *
 * @module
 */
import { UnsyncableError } from "../errors.ts";
import { logger } from "../log.ts";
import type { BaseFile, BaseState } from "../model/base.ts";
import type { FileEntry, Manifest } from "../model/manifest.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import { matchesExclude } from "../repo/exclude.ts";
import { type LocalFile, scanModel, type ScanResult, type Unsyncable } from "../repo/scan.ts";
import { printable } from "../provider/stale.ts";
import type { RepoWorkspace } from "./session.ts";
import { type FileState, sameState } from "./three_way.ts";
import type { LandingState } from "../model/landing.ts";
import type { StoredManifest } from "../model/commits.ts";
import type { PackLocation } from "../model/pack.ts";

/** path → state of a manifest, base or scan. */
export function statesOf(
  files: Iterable<FileEntry | BaseFile | LocalFile> | undefined,
): Map<string, FileState> {
  const out = new Map<string, FileState>();
  for (const f of files ?? []) out.set(f.path, stateOf(f));
  return out;
}

/**
 * The state of one manifest entry, base entry or scanned file (a link keeps
 * its target; a packed manifest entry its pack location).
 */
export function stateOf(f: FileEntry | BaseFile | LocalFile | FileState): FileState {
  if (f.link !== undefined) {
    return { sha256: f.sha256, size: f.size, executable: false, link: f.link };
  }
  const pack = (f as FileEntry).pack;
  return pack === undefined
    ? { sha256: f.sha256, size: f.size, executable: f.executable }
    : { sha256: f.sha256, size: f.size, executable: f.executable, pack };
}

/**
 * Manifest entries from a state map, sorted by path. A file's content is
 * where its state says, else where `stored` says that content is (a pack
 * location learned from the head or from this push's uploads), else in a
 * blob of its own.
 */
export function entriesOf(
  states: ReadonlyMap<string, FileState>,
  stored?: ReadonlyMap<string, PackLocation>,
): FileEntry[] {
  return [...states.entries()]
    .map(([p, st]) => {
      const e: FileEntry = { path: p, ...stateOf(st) };
      if (e.link === undefined && e.pack === undefined) {
        const at = stored?.get(e.sha256);
        if (at !== undefined) e.pack = at;
      }
      return e;
    })
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Content hashes of the files in `files` stored as blobs of their own (not packed, not links). */
export function ownBlobs(files: Iterable<FileEntry | FileState>): Set<string> {
  const out = new Set<string>();
  for (const f of files) if (f.link === undefined && f.pack === undefined) out.add(f.sha256);
  return out;
}

/** Content hash → pack location of every packed file in `files`. */
export function packLocations(files: Iterable<FileEntry | FileState>): Map<string, PackLocation> {
  const out = new Map<string, PackLocation>();
  for (const f of files) if (f.pack !== undefined) out.set(f.sha256, f.pack);
  return out;
}

/**
 * The base after a sync: the committed manifest, with each file's local
 * mtime where the working tree holds exactly that state (so the next scan can
 * skip hashing it) and -1 where it does not (forcing a hash).
 */
export function baseAfterSync(
  model: ModelRef,
  opts: {
    manifest: Manifest;
    version: string;
    local: ReadonlyMap<string, LocalFile>;
    landed?: ReadonlyMap<string, number>;
    syncedAtMs: number;
  },
): BaseState {
  const files: BaseFile[] = opts.manifest.files.map((f) => {
    const landed = opts.landed?.get(f.path);
    const l = opts.local.get(f.path);
    let mtimeMs = -1;
    if (landed !== undefined) mtimeMs = landed;
    else if (l !== undefined && sameState(l, f)) mtimeMs = l.mtimeMs;
    // The base records content, not where the datastore keeps it.
    const { pack: _pack, ...entry } = f;
    return { ...entry, mtimeMs };
  });
  return {
    format: 1,
    model: formatRef(model),
    generation: opts.manifest.generation,
    version: opts.version,
    files,
    syncedAtMs: opts.syncedAtMs,
  };
}

/** True when two state maps hold the same paths with the same states. */
export function sameStates(
  a: ReadonlyMap<string, FileState>,
  b: ReadonlyMap<string, FileState>,
): boolean {
  if (a.size !== b.size) return false;
  for (const [p, st] of a) {
    if (!sameState(b.get(p), st)) return false;
  }
  return true;
}

/**
 * The local states of a scan plus the base entries that now match
 * `exclude`: an excluded file is never synced, so adding a pattern must not
 * turn into a deletion on the datastore (SPEC §3 invariant 6).
 */
export function localStates(
  files: ReadonlyMap<string, LocalFile>,
  opts: { base: { files: readonly BaseFile[] } | null; exclude: readonly string[] },
): Map<string, FileState> {
  const out = statesOf(files.values());
  if (opts.exclude.length === 0) return out;
  for (const f of opts.base?.files ?? []) {
    if (!out.has(f.path) && matchesExclude(f.path, [...opts.exclude])) out.set(f.path, stateOf(f));
  }
  return out;
}

/** Scans one model of the session's repository against its base. */
export function scanAgainst(
  s: RepoWorkspace,
  model: ModelRef,
  opts: { base: BaseState | null; signal?: AbortSignal },
): Promise<ScanResult> {
  return scanModel(s.repoDir, model, {
    dataDir: s.config.dataDir,
    exclude: s.config.exclude,
    symlinks: s.config.symlinks,
    base: opts.base,
    signal: opts.signal ?? s.signal,
    hashConcurrency: s.jobs,
  });
}

/**
 * The base as the working tree last saw modelsync write it: where an
 * interrupted sync's landing journal says it put state X (or removed the
 * file) and the local file is exactly that, the journal's state is the base
 * for that path. A file the user changed since stays a local change.
 */
export function effectiveBase(
  base: ReadonlyMap<string, FileState>,
  opts: {
    landing: ReadonlyMap<string, LandingState> | null;
    local: ReadonlyMap<string, FileState>;
  },
): Map<string, FileState> {
  const out = new Map(base);
  for (const [p, st] of opts.landing ?? []) {
    if (!sameState(opts.local.get(p), st ?? undefined)) continue;
    if (st === null) out.delete(p);
    else out.set(p, st);
  }
  return out;
}

/** Paths that are a file in `states` while other paths lie under them, sorted. */
export function fileDirClashes(states: ReadonlyMap<string, FileState>): string[] {
  const out: string[] = [];
  for (const p of states.keys()) {
    const segs = p.split("/");
    for (let i = 1; i < segs.length; i++) {
      const dir = segs.slice(0, i).join("/");
      if (states.has(dir)) out.push(dir);
    }
  }
  return [...new Set(out)].sort();
}

/**
 * The base with fresh mtimes for files a scan hashed and found unchanged,
 * and the scan's start as the new `syncedAtMs`: git's index refresh, so an
 * unchanged file is read once, not on every command. The start, not the end:
 * a file written in the same clock tick as an mtime the scan read must stay
 * within the racy window and be hashed again next time.
 */
export function refreshedBase(base: BaseState, scan: ScanResult): BaseState {
  return {
    ...base,
    files: base.files.map((f) => {
      const l = scan.files.get(f.path);
      return l !== undefined && sameState(l, f) ? { ...f, size: l.size, mtimeMs: l.mtimeMs } : f;
    }),
    syncedAtMs: scan.startedAtMs,
  };
}

/** Unsyncable entries for a one-line message: `path (problem), ...`, control characters escaped. */
export function describeUnsyncable(entries: readonly Unsyncable[]): string {
  const shown = entries.slice(0, 5).map((u) => `${printable(u.path, Infinity)} (${u.problem})`);
  if (entries.length > 5) shown.push(`and ${entries.length - 5} more`);
  return shown.join(", ");
}

/** What fixes the entries: always rename, remove or exclude; for links leaving, `symlinks: follow`. */
function remedyFor(entries: readonly Unsyncable[]): string {
  const leaving = entries.some((u) => u.problem.includes("that leaves the model"));
  return `Rename or remove ${entries.length === 1 ? "it" : "them"}, or add ${
    entries.length === 1 ? "it" : "them"
  } to exclude in modelsync.yaml${
    leaving ? `; or set "symlinks: follow" there to sync the files such links point to` : ""
  }, then push again.`;
}

/**
 * Warns about the entries of a scan that are not synced, and, for a push,
 * refuses a model with entries it cannot sync: a commit without them would
 * read as their deletion everywhere else (design/sync.md). Throws
 * {@linkcode UnsyncableError} (exit 2).
 */
export function checkSyncable(
  scan: Pick<ScanResult, "model" | "skipped" | "unsyncable">,
  opts: { push: boolean },
): void {
  const key = formatRef(scan.model);
  for (const skipped of scan.skipped) logger("repo").warn(`Skipped ${key}/${skipped}`);
  if (scan.unsyncable.length === 0) return;
  const n = scan.unsyncable.length;
  const what = `${n} ${n === 1 ? "entry" : "entries"} of ${key} cannot be synced: ${
    describeUnsyncable(scan.unsyncable)
  }.`;
  if (!opts.push) {
    logger("repo").warn(`${what} They stay as they are. ${remedyFor(scan.unsyncable)}`);
    return;
  }
  throw new UnsyncableError(
    `Cannot push ${key}: ${what} Nothing of ${key} was pushed. ${remedyFor(scan.unsyncable)}`,
    { entries: scan.unsyncable },
  );
}

/**
 * True when the datastore's manifest differs from the base without being
 * newer: a lower generation, or the same generation under another version
 * with other files (a datastore restored from a backup, perhaps committed to
 * since). The same generation and files under a new version token (a copied
 * datastore) is not a rollback.
 */
export function isRollback(base: BaseState | null, remote: StoredManifest | null): boolean {
  if (base === null || remote === null || remote.version === base.version) return false;
  const gen = remote.manifest.generation;
  if (gen < base.generation) return true;
  if (gen > base.generation) return false;
  return !sameStates(statesOf(remote.manifest.files), statesOf(base.files));
}
