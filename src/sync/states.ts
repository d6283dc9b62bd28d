/**
 * Conversions between manifests, base state and scans, and the base written
 * after a successful sync.
 *
 * @module
 */
import type { BaseFile, BaseState } from "../model/base.ts";
import type { FileEntry, Manifest } from "../model/manifest.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import { matchesExclude } from "../repo/exclude.ts";
import { type LocalFile, scanModel, type ScanResult } from "../repo/scan.ts";
import type { RepoWorkspace } from "./session.ts";
import { type FileState, sameState } from "./three_way.ts";
import type { LandingState } from "../model/landing.ts";

/** path → state of a manifest, base or scan. */
export function statesOf(
  files: Iterable<FileEntry | BaseFile | LocalFile> | undefined,
): Map<string, FileState> {
  const out = new Map<string, FileState>();
  for (const f of files ?? []) {
    out.set(f.path, { sha256: f.sha256, size: f.size, executable: f.executable });
  }
  return out;
}

/** Manifest entries from a state map, sorted by path. */
export function entriesOf(states: ReadonlyMap<string, FileState>): FileEntry[] {
  return [...states.entries()]
    .map(([p, st]) => ({ path: p, sha256: st.sha256, size: st.size, executable: st.executable }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
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
    else if (l !== undefined && l.sha256 === f.sha256 && l.executable === f.executable) {
      mtimeMs = l.mtimeMs;
    }
    return { ...f, mtimeMs };
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
    const o = b.get(p);
    if (o === undefined || o.sha256 !== st.sha256 || o.executable !== st.executable) return false;
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
    if (!out.has(f.path) && matchesExclude(f.path, [...opts.exclude])) {
      out.set(f.path, { sha256: f.sha256, size: f.size, executable: f.executable });
    }
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
      return l !== undefined && l.sha256 === f.sha256 && l.executable === f.executable
        ? { ...f, size: l.size, mtimeMs: l.mtimeMs }
        : f;
    }),
    syncedAtMs: scan.startedAtMs,
  };
}
