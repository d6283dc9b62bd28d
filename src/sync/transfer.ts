/**
 * Moving blobs: uploads of local files that the datastore lacks, and landing
 * remote files in the working tree (download to tmp, verify, rename).
 *
 * @module
 */
import { listPaths } from "./format.ts";
import path from "node:path";
import { ConflictError, CorruptError, NotFoundError } from "../errors.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import { writeLanding } from "../model/landing.ts";
import { assertNamesFit, downloadToTmp, placeFile, placeLink, removeFile } from "../repo/apply.ts";
import type { FileState } from "./three_way.ts";
import { fileDirClashes } from "./states.ts";
import { runPool } from "../async.ts";
import type { Progress } from "./progress.ts";
import type { RepoSession } from "./session.ts";

/** A local file to upload. */
export interface UploadItem {
  sha256: string;
  size: number;
  /** Absolute path of the local file. */
  file: string;
}

/** Counts of what moved. */
export interface Moved {
  files: number;
  bytes: number;
}

/** What {@linkcode uploadMissing} did: what it stored, and how many blobs were there already. */
export interface Uploaded extends Moved {
  /** Distinct blobs the datastore already had (nothing sent for them). */
  found: number;
}

/** Hashes per `hasBlobs` call with `fresh` (one request each on S3: a call's deadline must fit). */
const FRESH_BATCH = 1_000;

/** Absolute directory of a model in the working tree. */
export function modelDir(s: RepoSession, model: ModelRef): string {
  return path.join(s.repoDir, s.config.dataDir, model.type, model.id);
}

/**
 * Uploads the blobs the datastore does not have yet, each once, in a rolling
 * pool of `s.jobs`. Returns what was uploaded and how many were found.
 * `fresh` asks the store itself whether each is there (not a provider's
 * memory of earlier answers): after a gc may have removed blobs.
 */
export async function uploadMissing(
  s: RepoSession,
  items: readonly UploadItem[],
  opts: { signal: AbortSignal; progress: Progress; fresh?: boolean },
): Promise<Uploaded> {
  const unique = new Map<string, UploadItem>();
  for (const it of items) if (!unique.has(it.sha256)) unique.set(it.sha256, it);
  if (unique.size === 0) return { files: 0, bytes: 0, found: 0 };
  const hashes = [...unique.keys()];
  let present: Set<string>;
  if (opts.fresh) {
    present = new Set();
    for (let i = 0; i < hashes.length; i += FRESH_BATCH) {
      const batch = hashes.slice(i, i + FRESH_BATCH);
      for (const h of await s.provider.hasBlobs(batch, { signal: opts.signal, fresh: true })) {
        present.add(h);
      }
    }
  } else {
    present = await s.provider.hasBlobs(hashes, { signal: opts.signal });
  }
  const missing = [...unique.values()].filter((it) => !present.has(it.sha256));
  let bytes = 0;
  opts.progress.addTotal(missing.length, missing.reduce((n, it) => n + it.size, 0));
  const signal = opts.signal;
  await runPool(missing, { jobs: s.jobs, signal }, async (it) => {
    if (performance.now() - lastBreath >= BREATHE_EVERY_MS) await breathe();
    const tracked = opts.progress.track(it.size);
    await s.provider.putBlob(it.sha256, {
      kind: "file",
      path: it.file,
      size: it.size,
      onRead: tracked.bytes,
    }, { signal });
    tracked.done();
    bytes += it.size;
  });
  return { files: missing.length, bytes, found: unique.size - missing.length };
}

/** Downloads from this size up report progress chunk by chunk. */
const STREAM_PROGRESS_BYTES = 1024 * 1024;

/** Passes `body` through, reporting each chunk's size to `onBytes` (download progress). */
function counted(
  body: ReadableStream<Uint8Array>,
  onBytes: (n: number) => void,
): ReadableStream<Uint8Array> {
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctrl) {
        onBytes(chunk.byteLength);
        ctrl.enqueue(chunk);
      },
    }),
  );
}

/** How long uploads that never wait for I/O may hold the event loop. */
const BREATHE_EVERY_MS = 50;
let lastBreath = performance.now();

/**
 * Awaited before an upload when 50 ms passed since the last time: yields to
 * the event loop (timers, such as lease renewals). A provider may
 * complete small calls synchronously (the filesystem one on a local disk),
 * and a pool of such calls would otherwise run as one long chain of
 * microtasks in which no timer fires.
 */
async function breathe(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  lastBreath = performance.now();
}

/** What landing remote states did: new mtimes of written files, and counts. */
export interface Landed extends Moved {
  /** path → landed mtimeMs, for files written. */
  mtimes: Map<string, number>;
}

/**
 * Makes the working tree match `remote` at `paths`: downloads present states
 * (hash-checked into .modelsync/tmp, then renamed into place), makes links
 * (no download: the target is in the manifest) and removes absent ones.
 * Every download completes before anything is placed, so a failed transfer
 * changes no local file.
 */
export async function landRemote(
  s: RepoSession,
  model: ModelRef,
  opts: {
    paths: readonly string[];
    remote: ReadonlyMap<string, FileState>;
    /** What the scan saw at each path (absent = no file); a path that changed since is not touched. */
    expectLocal: ReadonlyMap<string, { size: number; mtimeMs: number }>;
    signal: AbortSignal;
    progress: Progress;
    /**
     * Runs once every download is verified and the affected paths are
     * checked unchanged, before anything is removed or replaced (a pull with
     * --theirs saves the local versions here).
     */
    beforeChange?: () => Promise<void>;
  },
): Promise<Landed> {
  const writes = opts.paths.filter((p) => opts.remote.has(p));
  const removes = opts.paths.filter((p) => !opts.remote.has(p));
  const blobs = writes.filter((p) => opts.remote.get(p)!.link === undefined);
  await assertNamesFit(s.repoDir, model, { paths: writes, dataDir: s.config.dataDir });
  opts.progress.addTotal(blobs.length, blobs.reduce((n, p) => n + opts.remote.get(p)!.size, 0));
  const tmpFiles: string[] = [];
  let bytes = 0;
  try {
    const downloads = await runPool(blobs, { jobs: s.jobs, signal: opts.signal }, async (p) => {
      const st = opts.remote.get(p)!;
      const stream = await s.provider.getBlob(st.sha256, { signal: opts.signal }).catch((err) => {
        if (!(err instanceof NotFoundError)) throw err;
        throw new CorruptError(
          `The datastore has no blob ${st.sha256} for ${p} of ${formatRef(model)}, although its ` +
            `manifest names it; nothing was written. Push ${formatRef(model)} again from a ` +
            `repository that has the file.`,
          { cause: err },
        );
      });
      const tracked = opts.progress.track(st.size);
      // Small files complete at once: only large ones are counted as they stream.
      const body = st.size >= STREAM_PROGRESS_BYTES ? counted(stream, tracked.bytes) : stream;
      const tmp = await downloadToTmp(s.repoDir, body, st, {
        signal: opts.signal,
        what: { model, path: p },
      });
      tracked.done();
      tmpFiles.push(tmp);
      bytes += st.size;
      return tmp;
    });
    const fetched = new Map(blobs.map((p, i) => [p, downloads[i]]));
    opts.signal.throwIfAborted();
    await assertUntouched(s, model, opts.paths, opts.expectLocal);
    await opts.beforeChange?.();
    // Journal first: a kill from here on leaves files that the next sync
    // recognises as its own writes (src/model/landing.ts).
    await writeLanding(
      s.repoDir,
      model,
      new Map(opts.paths.map((p) => [p, opts.remote.get(p) ?? null])),
    );
    // Removals before writes, so a directory that becomes a file (or a file
    // that becomes a directory) is out of the way when the new one lands.
    // Each path is checked again right before it is touched: a user edit
    // made while earlier files landed is never overwritten (the window left
    // is one lstat to one rename).
    for (const p of removes) {
      await assertUntouched(s, model, [p], opts.expectLocal);
      await removeFile(s.repoDir, model, p, { dataDir: s.config.dataDir });
    }
    const mtimes = new Map<string, number>();
    for (let i = 0; i < writes.length; i++) {
      const st = opts.remote.get(writes[i])!;
      await assertUntouched(s, model, [writes[i]], opts.expectLocal);
      const landed = st.link === undefined
        ? await placeFile(
          s.repoDir,
          model,
          { path: writes[i], executable: st.executable },
          fetched.get(writes[i])!,
          { dataDir: s.config.dataDir },
        )
        : await placeLink(s.repoDir, model, { path: writes[i], link: st.link }, {
          dataDir: s.config.dataDir,
        });
      mtimes.set(writes[i], landed.mtimeMs);
    }
    return { files: writes.length + removes.length, bytes, mtimes };
  } finally {
    await Promise.all(tmpFiles.map((t) => Deno.remove(t).catch(() => {})));
  }
}

async function lstatOrNull(p: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(p);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return null;
    }
    throw err;
  }
}

/**
 * True when the directory `abs` (model path `rel`) holds only files the plan
 * removes, so the removals leave it empty and prune it.
 */
async function emptiedByRemovals(
  abs: string,
  rel: string,
  removes: ReadonlySet<string>,
): Promise<boolean> {
  let any = false;
  for await (const e of Deno.readDir(abs)) {
    any = true;
    const childRel = `${rel}/${e.name}`;
    if (e.isDirectory) {
      if (!(await emptiedByRemovals(path.join(abs, e.name), childRel, removes))) return false;
    } else if (!removes.has(childRel)) {
      return false;
    }
  }
  return any;
}

/**
 * The paths at which landing `paths` from `remote` would need a file where
 * a directory is, or a directory where a file is: a local file (synced,
 * excluded or skipped) in the way of a remote directory, or a local
 * directory in the way of a remote file. Found while planning, before
 * anything is removed or written; sorted.
 */
export async function landingClashes(
  s: RepoSession,
  model: ModelRef,
  opts: {
    paths: readonly string[];
    remote: ReadonlyMap<string, FileState>;
    local: ReadonlyMap<string, FileState>;
  },
): Promise<string[]> {
  const after = new Map(opts.local);
  for (const p of opts.paths) {
    const st = opts.remote.get(p);
    if (st === undefined) after.delete(p);
    else after.set(p, st);
  }
  const out = new Set(fileDirClashes(after));
  const removes = new Set(opts.paths.filter((p) => !opts.remote.has(p)));
  const dir = modelDir(s, model);
  for (const p of opts.paths) {
    if (!opts.remote.has(p)) continue;
    const segs = p.split("/");
    let blocked = false;
    for (let i = 1; i < segs.length; i++) {
      const parent = segs.slice(0, i).join("/");
      const info = await lstatOrNull(path.join(dir, ...segs.slice(0, i)));
      if (info === null) break;
      if (info.isDirectory) continue;
      if (!removes.has(parent)) out.add(parent);
      blocked = true;
      break;
    }
    if (blocked) continue;
    const info = await lstatOrNull(path.join(dir, ...segs));
    if (info?.isDirectory && !(await emptiedByRemovals(path.join(dir, ...segs), p, removes))) {
      out.add(p);
    }
  }
  return [...out].sort();
}

/**
 * Refuses to overwrite or remove a local file that changed after the scan
 * that planned the sync (a write racing the sync must never be lost).
 */
async function assertUntouched(
  s: RepoSession,
  model: ModelRef,
  paths: readonly string[],
  expect: ReadonlyMap<string, { size: number; mtimeMs: number }>,
): Promise<void> {
  const dir = modelDir(s, model);
  const changed: string[] = [];
  for (const p of paths) {
    const want = expect.get(p);
    let st: Deno.FileInfo | undefined;
    try {
      st = await Deno.lstat(path.join(dir, p));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound) && !(err instanceof Deno.errors.NotADirectory)) {
        throw err;
      }
    }
    // An absent path may hold a directory: only its files count (they are
    // other paths of the plan, or placeFile refuses to replace them).
    if (want === undefined && st?.isDirectory) continue;
    if (want === undefined ? st !== undefined : !sameStat(st, want)) {
      // A link followed with "symlinks: follow" was scanned by what it points to.
      if (want === undefined || !st?.isSymlink || !sameStat(await statOrUndefined(dir, p), want)) {
        changed.push(p);
      }
    }
  }
  if (changed.length > 0) {
    throw new ConflictError(
      `Local files of ${formatRef(model)} changed while syncing (${
        listPaths(changed)
      }); they were not overwritten. Rerun the command.`,
      { paths: changed },
    );
  }
}

function sameStat(st: Deno.FileInfo | undefined, want: { size: number; mtimeMs: number }): boolean {
  return st !== undefined && st.size === want.size &&
    Math.abs((st.mtime?.getTime() ?? 0) - want.mtimeMs) < 1;
}

async function statOrUndefined(dir: string, p: string): Promise<Deno.FileInfo | undefined> {
  return await Deno.stat(path.join(dir, p)).catch(() => undefined);
}

/**
 * Removes a model's directory when it is empty, and its now-empty type
 * directories up to (not including) the data directory: a pulled tombstone
 * leaves no empty folders behind. A non-empty directory stays.
 */
export async function pruneEmptyModelDir(s: RepoSession, model: ModelRef): Promise<void> {
  const root = path.join(s.repoDir, s.config.dataDir);
  let dir = modelDir(s, model);
  while (dir.startsWith(root + path.sep)) {
    try {
      await Deno.remove(dir);
    } catch {
      return;
    }
    dir = path.dirname(dir);
  }
}
