/**
 * Scanning the working tree: which models exist locally, which files each
 * holds, and what changed since the base. This is the hot path of a no-op
 * push: one `lstat` per unchanged file and no reads, as git does, with the
 * racily-clean guard (a file written within 2 s of the base is re-hashed).
 *
 * Every entry is synced or reported (SPEC §3 invariant 9). A symbolic link
 * that stays inside its model is synced as a link; what cannot be synced (a
 * name that is not valid UTF-8 or breaks the path rules, a link leaving the
 * model, a link loop) is listed in `unsyncable`, and push refuses the model
 * until it is fixed; what is never synced by rule (a nested `.modelsync`,
 * sockets, devices) is listed in `skipped`. The walk itself is `./_walk.ts`.
 *
 * @example
 * ```ts
 * import { scanModel } from "./scan.ts";
 * const repo = await Deno.makeTempDir();
 * await Deno.mkdir(`${repo}/models/vpc/m1`, { recursive: true });
 * await Deno.writeTextFile(`${repo}/models/vpc/m1/a.txt`, "hi");
 * const r = await scanModel(repo, { type: "vpc", id: "m1" }, {
 *   dataDir: "models", exclude: [], base: null,
 * });
 * console.log(r.changes.added); // ["a.txt"]
 * await Deno.remove(repo, { recursive: true });
 * ```
 * @module
 */
import { join } from "node:path";
import { UsageError } from "../errors.ts";
import type { BaseFile, BaseState } from "../model/base.ts";
import { hashBytes, hashFile, hashSmallFileSync } from "../model/hash.ts";
import { linkBytes, linkListProblems } from "../model/link.ts";
import { compareRefs, formatRef, type ModelRef, refProblem } from "../model/ref.ts";
import { compileExclude, type ExcludeMatcher } from "./exclude.ts";
import { walk } from "./_walk.ts";

/** One regular file (or symbolic link kept as a link) found in a model directory. */
export interface LocalFile {
  /** Relative to the model directory, `/`-separated. */
  path: string;
  /** Of a link: its target's length in UTF-8 bytes. */
  size: number;
  /** What `lstat` showed (`stat`, for a link followed with `symlinks: follow`). */
  mtimeMs: number;
  executable: boolean;
  /** Of a link: SHA-256 of its target's UTF-8 bytes. */
  sha256: string;
  /** Present for a symbolic link synced as a link: its exact target. */
  link?: string;
}

/** An entry the scan found but cannot sync, and why. */
export interface Unsyncable {
  /** Relative to the model directory; a name that is not UTF-8 is shown with U+FFFD. */
  path: string;
  problem: string;
}

/**
 * What to do with a symbolic link whose target leaves its model: `store`
 * (default) refuses to push the model; `follow` syncs the content of the
 * file it points to. Links inside the model are stored as links either way.
 */
export type SymlinkMode = "store" | "follow";

/** Paths relative to the model directory, each list sorted. */
export interface Changes {
  added: string[];
  modified: string[];
  deleted: string[];
}

/** What {@linkcode scanModel} found. */
export interface ScanResult {
  model: ModelRef;
  /** Absolute model directory. */
  dir: string;
  /** False when the model directory does not exist (every base file is deleted). */
  exists: boolean;
  files: Map<string, LocalFile>;
  changes: Changes;
  /**
   * Entries never synced by rule, each `path (reason)`: a nested `.modelsync`,
   * sockets, FIFOs, devices. Reported as warnings; they do not stop a push.
   */
  skipped: string[];
  /** Entries that should be synced but cannot be, sorted: push refuses the model while any remain. */
  unsyncable: Unsyncable[];
  /** Files actually read to hash them. */
  hashed: number;
  /**
   * When the scan began. A base written from this scan must use it as its
   * `syncedAtMs`: mtimes were read after it, so a file written in the same
   * clock tick as one of them stays within the racy window.
   */
  startedAtMs: number;
}

/** True when `changes` lists anything added, modified or deleted. */
export function hasChanges(changes: Changes): boolean {
  return changes.added.length + changes.modified.length + changes.deleted.length > 0;
}

/** A file is racily clean when its mtime is this close to (or after) the base's time. */
export const RACY_WINDOW_MS = 2000;
const DEFAULT_HASH_CONCURRENCY = 8;
const YIELD_EVERY = 4096;
const byPath = (a: { path: string }, b: { path: string }) =>
  a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
/** Files up to this size are hashed with one synchronous read. */
const SYNC_HASH_MAX_BYTES = 64 * 1024;

/** A file the scan must read. */
interface Pending {
  path: string;
  abs: string;
  size: number;
  mtimeMs: number;
  exec: boolean;
}

/** The directory of one model: `repoDir/dataDir/TYPE/ID`. */
export function modelDir(repoDir: string, dataDir: string, model: ModelRef): string {
  return join(repoDir, dataDir, ...model.type.split("/"), model.id);
}

/** Throws a UsageError (exit 2) when the data folder exists but is not a directory. */
export async function assertDataDir(repoDir: string, dataDir: string): Promise<void> {
  const root = join(repoDir, dataDir);
  const info = await Deno.stat(root).catch(() => undefined);
  if (info !== undefined && !info.isDirectory) {
    throw new UsageError(
      `The data folder ${root} is not a directory: move it aside, or set dataDir in modelsync.yaml.`,
    );
  }
}

/**
 * Lists the model directories under `dataDir`: `TYPE/ID` and
 * `@scope/name/ID`, sorted by ref. Anything else (a file, a symlink, a name
 * that is not a valid ref) is skipped with a warning, never a crash.
 */
export async function listLocalModels(
  repoDir: string,
  dataDir: string,
): Promise<{ models: ModelRef[]; warnings: string[] }> {
  const root = join(repoDir, dataDir);
  await assertDataDir(repoDir, dataDir);
  const models: ModelRef[] = [];
  const warnings: string[] = [];
  const expect = (rel: string, e: Deno.DirEntry, what: string): boolean => {
    if (e.isDirectory) return true;
    const kind = e.isSymlink ? "a symlink (never followed)" : "not a directory";
    warnings.push(`Skipping ${dataDir}/${rel}: ${kind}; expected ${what}.`);
    return false;
  };
  const ids = async (type: string) => {
    for (const e of await readDirOrEmpty(join(root, ...type.split("/")))) {
      const rel = `${type}/${e.name}`;
      if (!expect(rel, e, `a model directory ${dataDir}/TYPE/ID/`)) continue;
      const problem = refProblem(rel);
      if (problem !== undefined) {
        warnings.push(`Skipping ${dataDir}/${rel}: not a valid model ref (${problem}).`);
        continue;
      }
      models.push({ type, id: e.name });
    }
  };
  for (const e of await readDirOrEmpty(root)) {
    if (!expect(e.name, e, `a TYPE directory ${dataDir}/TYPE/`)) continue;
    if (e.name.startsWith("@")) {
      for (const t of await readDirOrEmpty(join(root, e.name))) {
        const type = `${e.name}/${t.name}`;
        if (!expect(type, t, `a TYPE directory ${dataDir}/@scope/name/`)) continue;
        const problem = refProblem(`${type}/x`);
        if (problem !== undefined) {
          warnings.push(`Skipping ${dataDir}/${type}: not a valid model type (${problem}).`);
          continue;
        }
        await ids(type);
      }
      continue;
    }
    const problem = refProblem(`${e.name}/x`);
    if (problem !== undefined) {
      warnings.push(`Skipping ${dataDir}/${e.name}: not a valid model type (${problem}).`);
      continue;
    }
    await ids(e.name);
  }
  return { models: models.sort(compareRefs), warnings };
}

async function readDirOrEmpty(dir: string): Promise<Deno.DirEntry[]> {
  try {
    return await Array.fromAsync(Deno.readDir(dir));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return [];
    throw err;
  }
}

/** Options of {@linkcode scanModel}. */
export interface ScanOptions {
  dataDir: string;
  exclude: string[];
  base: BaseState | null;
  /** Links that leave the model: refused (`store`, default) or followed (`follow`). */
  symlinks?: SymlinkMode;
  signal?: AbortSignal;
  /** Files hashed in parallel (default 8). */
  hashConcurrency?: number;
}

/**
 * Walks one model directory and measures it against its base. A symlink
 * that stays inside the model is a link entry; one that leaves it is
 * `unsyncable`, or with `symlinks: follow` the file it points to is read as
 * the entry's content. Excluded paths are invisible. A file
 * whose size and mtime equal the base entry, and whose mtime is well before
 * the base was recorded, keeps the base hash without being read. A base
 * file that is now excluded is neither kept nor deleted: it is not reported.
 */
export async function scanModel(
  repoDir: string,
  model: ModelRef,
  opts: ScanOptions,
): Promise<ScanResult> {
  const startedAtMs = Date.now();
  const dir = modelDir(repoDir, opts.dataDir, model);
  const matcher = compileExclude(opts.exclude);
  const result: ScanResult = {
    startedAtMs,
    model,
    dir,
    exists: false,
    files: new Map(),
    changes: { added: [], modified: [], deleted: [] },
    skipped: [],
    unsyncable: [],
    hashed: 0,
  };
  const baseFiles = new Map<string, BaseFile>();
  for (const f of opts.base?.files ?? []) baseFiles.set(f.path, f);

  let top: Deno.FileInfo | undefined;
  try {
    top = Deno.lstatSync(dir);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory)) {
      throw err;
    }
  }
  if (top !== undefined && !top.isDirectory) {
    const what = top.isSymlink ? "a symlink, which modelsync never follows" : "not a directory";
    throw new UsageError(
      `Cannot scan ${formatRef(model)}: ${dir} is ${what}. Replace it with a real directory.`,
    );
  }
  result.exists = top !== undefined;

  const toHash: Pending[] = [];
  const links: LocalFile[] = [];
  const trustBefore = (opts.base?.syncedAtMs ?? -Infinity) - RACY_WINDOW_MS;
  if (result.exists) {
    await walk({
      root: dir,
      matcher,
      skipped: result.skipped,
      unsyncable: (path, problem) => void result.unsyncable.push({ path, problem }),
      symlinks: opts.symlinks ?? "store",
      signal: opts.signal,
      onFile: (path, abs, info) => {
        const mtimeMs = info.mtime?.getTime() ?? NaN;
        const exec = ((info.mode ?? 0) & 0o111) !== 0;
        const b = baseFiles.get(path);
        if (
          b !== undefined && b.size === info.size && b.mtimeMs === mtimeMs &&
          mtimeMs < trustBefore && b.link === undefined
        ) {
          result.files.set(path, {
            path,
            size: info.size,
            mtimeMs,
            executable: exec,
            sha256: b.sha256,
          });
          if (b.executable !== exec) result.changes.modified.push(path);
          return;
        }
        toHash.push({ path, abs, size: info.size, mtimeMs, exec });
      },
      onLink: (path, target, info) => {
        // A link's content is its target: no file is read, nothing to hash but a few bytes.
        const b = baseFiles.get(path);
        const same = b !== undefined && b.link === target;
        const bytes = same ? undefined : linkBytes(target);
        links.push({
          path,
          size: same ? b.size : bytes!.length,
          mtimeMs: info.mtime?.getTime() ?? NaN,
          executable: false,
          sha256: same ? b.sha256 : hashBytes(bytes!),
          link: target,
        });
      },
    });
  }
  if (links.length > 0) keepLinks(result, { links, pending: toHash, baseFiles });
  result.unsyncable.sort(byPath);

  const record = (f: Pending, h: { sha256: string; size: number }) => {
    result.hashed++;
    result.files.set(f.path, {
      path: f.path,
      size: h.size,
      mtimeMs: f.mtimeMs,
      executable: f.exec,
      sha256: h.sha256,
    });
    const b = baseFiles.get(f.path);
    if (b === undefined) result.changes.added.push(f.path);
    else if (
      b.sha256 !== h.sha256 || b.size !== h.size || b.executable !== f.exec ||
      b.link !== undefined
    ) {
      result.changes.modified.push(f.path);
    }
  };
  // Small files: one synchronous read each (fastest in Deno); large ones in parallel.
  const large: Pending[] = [];
  let sinceYield = 0;
  for (const f of toHash) {
    if (f.size > SYNC_HASH_MAX_BYTES) {
      large.push(f);
      continue;
    }
    const h = vanishedIsUndefined(() => hashSmallFileSync(f.abs, f.size));
    if (h !== undefined) record(f, h);
    if (++sinceYield >= YIELD_EVERY / 4) {
      sinceYield = 0;
      await new Promise((resolve) => setTimeout(resolve, 0));
      opts.signal?.throwIfAborted();
    }
  }
  await pool(large, opts.hashConcurrency ?? DEFAULT_HASH_CONCURRENCY, async (f) => {
    try {
      record(f, await hashFile(f.abs, { signal: opts.signal, sizeHint: f.size }));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err; // vanished: treat as absent
    }
  });

  for (const path of baseFiles.keys()) {
    if (!result.files.has(path) && !isExcludedBase(path, matcher)) {
      result.changes.deleted.push(path);
    }
  }
  result.changes.added.sort();
  result.changes.modified.sort();
  result.changes.deleted.sort();
  return result;
}

/**
 * Adds the links the walk kept to the scan, except those every manifest
 * reader would refuse (`linkListProblems`, resolved through the file list
 * this scan would commit): those are unsyncable.
 */
function keepLinks(
  result: ScanResult,
  ctx: { links: LocalFile[]; pending: readonly Pending[]; baseFiles: Map<string, BaseFile> },
): void {
  const listed = [...result.files.values(), ...ctx.pending, ...ctx.links];
  const refused = new Map(linkListProblems(listed).map((p) => [p.path, p.problem]));
  for (const l of ctx.links) {
    const problem = refused.get(l.path);
    if (problem !== undefined) {
      result.unsyncable.push({ path: l.path, problem });
      continue;
    }
    result.files.set(l.path, l);
    const b = ctx.baseFiles.get(l.path);
    if (b === undefined) result.changes.added.push(l.path);
    else if (b.link !== l.link) result.changes.modified.push(l.path);
  }
}

function isExcludedBase(path: string, matcher: ExcludeMatcher): boolean {
  return matcher.isEmpty ? false : matcher.matchesPath(path);
}

function vanishedIsUndefined<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** Runs `work` over `items` with at most `limit` in flight; the first error wins. */
async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      try {
        await work(items[next++]);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const n = Math.max(1, Math.min(limit, items.length));
  await Promise.all(Array.from({ length: n }, worker));
}
