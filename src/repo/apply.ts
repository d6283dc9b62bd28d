/**
 * Landing remote files safely (SPEC §3 invariants 3 and 4): a download goes
 * to `.modelsync/tmp/`, is hash-checked as it streams, and lands by atomic
 * rename. A symbolic link is made in `.modelsync/tmp/` with its exact target
 * and renamed into place the same way. Nothing is ever written outside
 * `dataDir/TYPE/ID`, and never through a symlink: a rename replaces a link
 * at the destination itself (a file becomes a link, a link a file), and
 * parent directories that are links are refused.
 *
 * @example
 * ```ts
 * import { downloadToTmp, placeFile } from "./apply.ts";
 * import { hashBytes } from "../model/hash.ts";
 * const repo = await Deno.makeTempDir();
 * const bytes = new TextEncoder().encode("hello");
 * const tmp = await downloadToTmp(repo, new Blob([bytes]).stream(), {
 *   sha256: hashBytes(bytes), size: bytes.length,
 * });
 * await placeFile(repo, { type: "vpc", id: "m1" }, { path: "a/b.txt", executable: false }, tmp, {
 *   dataDir: "models",
 * });
 * console.log(await Deno.readTextFile(`${repo}/models/vpc/m1/a/b.txt`)); // hello
 * await Deno.remove(repo, { recursive: true });
 * ```
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { ConflictError, CorruptError, localFault, UsageError } from "../errors.ts";
import { joinRel, syncablePathProblem } from "../model/path.ts";
import { hashBytes } from "../model/hash.ts";
import { leavesProblem, linkTargetProblem, resolveLink } from "../model/link.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import { lstatEntry } from "./entry.ts";
import { modelDir } from "./scan.ts";

/** Directory of downloads in progress: `.modelsync/tmp`. */
export function tmpDir(repoDir: string): string {
  return joinRel(repoDir, ".modelsync/tmp");
}

/** Names of temporary downloads: unique in this process, and random across processes. */
const tmpPrefix = randomBytes(8).toString("hex");
let tmpCounter = 0;

/** A fresh name for a download in `dir`. */
function tmpName(dir: string): string {
  return joinRel(dir, `${tmpPrefix}-${++tmpCounter}.part`);
}

/**
 * Writes `bytes`, the whole content of a file in hand (a packed file's part
 * of its pack), into `.modelsync/tmp/`, checked against `expected` as
 * {@linkcode downloadToTmp} checks a stream, without a stream. Returns the
 * temporary path.
 */
export async function bytesToTmp(
  repoDir: string,
  bytes: Uint8Array,
  expected: { sha256: string; size: number },
  opts: { what?: { model: ModelRef; path: string } } = {},
): Promise<string> {
  if (hashBytes(bytes) !== expected.sha256) throw mismatch(expected.sha256);
  if (bytes.length !== expected.size) throw wrongSize(expected, bytes.length, opts.what);
  const dir = tmpDir(repoDir);
  return await writeTmp(dir, tmpName(dir), bytes);
}

/**
 * Streams a blob into `.modelsync/tmp/<random>`, hashing as it goes. When
 * the content does not hash to `expected.sha256`, the blob is corrupt; when
 * it does but its length differs from `expected.size`, the manifest that
 * gave that size is corrupt (the blob is intact). Either way the temporary
 * file is removed and a {@linkcode CorruptError} (exit 6) is thrown. `what`
 * names the file for that message. Returns the temporary path; the file
 * has mode 0644 exactly, whatever the umask.
 */
export async function downloadToTmp(
  repoDir: string,
  stream: ReadableStream<Uint8Array>,
  expected: { sha256: string; size: number },
  opts: { signal?: AbortSignal; what?: { model: ModelRef; path: string } } = {},
): Promise<string> {
  const dir = tmpDir(repoDir);
  const path = tmpName(dir);
  if (expected.size <= SMALL_DOWNLOAD_BYTES) {
    return await smallDownload(dir, path, stream, expected, opts);
  }
  const file = await inTmpDir(
    dir,
    () => Deno.open(path, { write: true, createNew: true, mode: 0o644 }),
  );
  const hash = createHash("sha256");
  const reader = stream.getReader();
  let size = 0;
  let ok = false;
  try {
    // Exactly 0644 whatever the umask, as writeFileSync with a mode makes a small one.
    await Deno.chmod(path, 0o644);
    for (;;) {
      opts.signal?.throwIfAborted();
      const { done, value } = await reader.read();
      if (done) break;
      // Past the expected size nothing is written, but the rest is still
      // hashed: it tells a corrupt blob from a manifest with a wrong size.
      const room = Math.max(0, expected.size - size);
      size += value.length;
      hash.update(value);
      if (room > 0) {
        // A failed write (no space left) names no path: name the download's.
        await writeAll(file, room >= value.length ? value : value.subarray(0, room)).catch(
          (err) => {
            throw localFault(err, path);
          },
        );
      }
    }
    const digest = hash.digest("hex");
    if (digest !== expected.sha256) throw mismatch(expected.sha256);
    if (size !== expected.size) throw wrongSize(expected, size, opts.what);
    ok = true;
  } finally {
    file.close();
    if (!ok) {
      await reader.cancel().catch(() => {});
      await Deno.remove(path).catch(() => {});
    }
    reader.releaseLock();
  }
  return path;
}

/** Downloads up to this size are checked in memory and written with one call. */
const SMALL_DOWNLOAD_BYTES = 1024 * 1024;

/** Temporary directories known to exist: created once per process, not once per file. */
const knownTmpDirs = new Set<string>();

/** Runs `create` (of a file in `dir`), creating `dir` first when it is missing. */
async function inTmpDir<T>(dir: string, create: () => Promise<T>): Promise<T> {
  if (!knownTmpDirs.has(dir)) {
    await Deno.mkdir(dir, { recursive: true });
    knownTmpDirs.add(dir);
  }
  try {
    return await create();
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    // Removed since (a user's `rm -rf .modelsync`): make it again.
    await Deno.mkdir(dir, { recursive: true });
    return await create();
  }
}

/**
 * A small download: read whole, hash-checked before anything is written,
 * then written to the temporary file with one call (no open stream, no
 * per-chunk writes: a pull of many small files spends its time on such
 * per-file calls).
 */
async function smallDownload(
  dir: string,
  path: string,
  stream: ReadableStream<Uint8Array>,
  expected: { sha256: string; size: number },
  opts: { signal?: AbortSignal; what?: { model: ModelRef; path: string } },
): Promise<string> {
  const hash = createHash("sha256");
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      opts.signal?.throwIfAborted();
      const { done, value } = await reader.read();
      if (done) break;
      // Past the expected size nothing is kept, but the rest is still
      // hashed: it tells a corrupt blob from a manifest with a wrong size.
      const room = Math.max(0, expected.size - size);
      size += value.length;
      hash.update(value);
      if (room > 0) chunks.push(room >= value.length ? value : value.subarray(0, room));
    }
  } catch (err) {
    await reader.cancel().catch(() => {});
    throw err;
  } finally {
    reader.releaseLock();
  }
  if (hash.digest("hex") !== expected.sha256) throw mismatch(expected.sha256);
  if (size !== expected.size) throw wrongSize(expected, size, opts.what);
  return await writeTmp(dir, path, chunks.length === 1 ? chunks[0] : concat(chunks, size));
}

/** Writes checked `bytes` to the new temporary file `path` in `dir`, mode 0644 exactly. */
async function writeTmp(dir: string, path: string, bytes: Uint8Array): Promise<string> {
  try {
    // Synchronous: one small write into the working tree costs a few
    // microseconds where an async one costs a hop to a thread pool.
    await inTmpDir(dir, () => {
      Deno.writeFileSync(path, bytes, { createNew: true, mode: 0o644 });
      return Promise.resolve();
    });
  } catch (err) {
    await Deno.remove(path).catch(() => {});
    throw localFault(err, path);
  }
  return path;
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

function mismatch(sha256: string): CorruptError {
  return new CorruptError(
    `Blob ${sha256} in the datastore is corrupt (its content does not match its hash); ` +
      `nothing was written. Delete that blob from the datastore, then push the model again ` +
      `from a repository that has the file.`,
  );
}

function wrongSize(
  expected: { sha256: string; size: number },
  actual: number,
  what: { model: ModelRef; path: string } | undefined,
): CorruptError {
  const whose = what === undefined
    ? "A manifest"
    : `The manifest of ${formatRef(what.model)} (file ${JSON.stringify(what.path)})`;
  return new CorruptError(
    `${whose} says blob ${expected.sha256} is ${expected.size} bytes, but that blob is intact ` +
      `(its content matches its hash) and holds ${actual} bytes: the manifest is corrupt; ` +
      `refusing it, nothing was written. Keep the blob; repair or re-push the model from a ` +
      `good copy.`,
  );
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}

function checkPath(model: ModelRef, path: string): void {
  const problem = syncablePathProblem(path);
  if (problem !== undefined) {
    throw new CorruptError(
      `Refusing path ${JSON.stringify(path)} of ${formatRef(model)}: ${problem}. ` +
        `Nothing was written. Repair or re-push the model from a good copy.`,
    );
  }
}

/** The last data folder {@linkcode dataRoot} joined, and its parts. */
let lastRoot = { repoDir: "", dataDir: "", root: "" };

/** `path.join(repoDir, dataDir)`, joined once for the files of a landing, not once per file. */
function dataRoot(repoDir: string, dataDir: string): string {
  if (lastRoot.repoDir !== repoDir || lastRoot.dataDir !== dataDir) {
    lastRoot = { repoDir, dataDir, root: join(repoDir, dataDir) };
  }
  return lastRoot.root;
}

/** Which directory a path named when it was checked (`lstatEntry`'s inode and device). */
export interface DirId {
  ino: number;
  dev: number;
}

/**
 * Makes sure every directory from the TYPE level down to `segs` exists as a
 * real directory inside the data folder: never through a symlink, never
 * replacing anything. Returns the absolute path of the last one. With
 * `verified`, a directory checked so before is checked again by one lookup
 * of its path, which must still name the same directory: files land only in
 * directories checked to be real ones inside the data folder.
 */
function ensureDirs(
  root: string,
  segs: string[],
  ctx: { model: ModelRef; file: string; inModelFrom: number; verified?: Map<string, DirId> },
): string {
  // Every segment is a checked name (a model ref's, or a synced path's).
  const last = joinRel(root, segs.join("/"));
  const known = ctx.verified?.get(last);
  if (known !== undefined) {
    // Checked before in this landing: one lookup tells whether the path
    // still names that directory (a level swapped for a symlink or a file,
    // or a directory made anew, does not; then every level is checked).
    const now = lstatEntry(last);
    if (now?.isDirectory && now.ino === known.ino && now.dev === known.dev) return last;
  }
  let dir = root;
  for (let i = 0; i < segs.length; i++) {
    dir = joinRel(dir, segs[i]);
    let info = lstatEntry(dir);
    if (info === null) {
      try {
        Deno.mkdirSync(dir);
      } catch (err) {
        if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      }
      info = lstatEntry(dir) ?? Deno.lstatSync(dir);
    }
    if (info.isDirectory) {
      if (i === segs.length - 1 && ctx.verified && info.ino !== null && info.dev !== null) {
        ctx.verified.set(last, { ino: info.ino, dev: info.dev });
      }
      continue;
    }
    const where = i < ctx.inModelFrom ? dir : segs.slice(ctx.inModelFrom, i + 1).join("/");
    if (info.isSymlink) {
      throw new UsageError(
        `Cannot write ${ctx.file} of ${formatRef(ctx.model)}: ${where} is a symlink, ` +
          `and modelsync never writes through symlinks. Replace it with a real directory.`,
      );
    }
    throw new ConflictError(
      `Cannot write ${ctx.file} of ${formatRef(ctx.model)}: ${where} is a file in the way. ` +
        `Move it aside and run "modelsync pull" again.`,
      { paths: [segs.slice(ctx.inModelFrom, i + 1).join("/")] },
    );
  }
  return dir;
}

/**
 * Lands a verified temporary file at `entry.path` inside the model
 * directory: creates parent directories (refusing symlinks), sets the mode
 * (0o755 or 0o644) and renames it into place atomically. Returns the landed
 * file's mtime and size, to record in the base.
 */
export async function placeFile(
  repoDir: string,
  model: ModelRef,
  entry: { path: string; executable: boolean },
  tmpPath: string,
  opts: {
    dataDir: string;
    /**
     * Data folders already made by this landing (made once, not per file).
     * Every directory inside one is still checked per file: one swapped for
     * a symlink while files land must stop the landing, never be written
     * through.
     */
    knownDirs?: Set<string>;
    /**
     * The directories this landing checked, and which each was: a file's
     * directory checked before is checked again by one lookup, not one per
     * level (see `ensureDirs`).
     */
    verifiedDirs?: Map<string, DirId>;
  },
): Promise<{ mtimeMs: number; size: number }> {
  checkPath(model, entry.path);
  const root = dataRoot(repoDir, opts.dataDir);
  if (!opts.knownDirs?.has(root)) {
    await Deno.mkdir(root, { recursive: true });
    opts.knownDirs?.add(root);
  }
  const modelSegs = [...model.type.split("/"), model.id];
  const fileSegs = entry.path.split("/");
  const parent = ensureDirs(root, [...modelSegs, ...fileSegs.slice(0, -1)], {
    model,
    file: entry.path,
    inModelFrom: modelSegs.length,
    verified: opts.verifiedDirs,
  });
  const target = joinRel(parent, fileSegs[fileSegs.length - 1]);
  // Synchronous calls from here: metadata calls in the working tree take
  // microseconds, an async one a hop to a thread pool, and a pull makes a
  // few per file.
  // The temporary file has mode 0644 exactly (downloadToTmp).
  if (entry.executable) Deno.chmodSync(tmpPath, 0o755);
  try {
    // rename replaces a file or a symlink at `target` itself; it never writes
    // through a link, and refuses to replace a directory (EISDIR), which is
    // asked of it rather than of a lookup before (a first pull lands into
    // nothing, and a lookup per file of nothing adds up).
    Deno.renameSync(tmpPath, target);
  } catch (err) {
    if (err instanceof Deno.errors.IsADirectory || lstatEntry(target)?.isDirectory) {
      throw new ConflictError(
        `Cannot write ${entry.path} of ${formatRef(model)}: a directory is in the way. ` +
          `Move it aside and run "modelsync pull" again.`,
        { paths: [entry.path] },
      );
    }
    if (!isCrossDevice(err)) throw err;
    // dataDir on another filesystem: copy beside the target, then rename.
    const near = join(parent, `.modelsync-${randomBytes(8).toString("hex")}.part`);
    try {
      await Deno.copyFile(tmpPath, near);
      await Deno.chmod(near, entry.executable ? 0o755 : 0o644);
      await Deno.rename(near, target);
    } catch (copyErr) {
      await Deno.remove(near).catch(() => {});
      throw copyErr;
    }
    await Deno.remove(tmpPath).catch(() => {});
  }
  const info = lstatEntry(target) ?? Deno.lstatSync(target);
  return { mtimeMs: info.mtime?.getTime() ?? 0, size: info.size };
}

/**
 * Lands a symbolic link at `entry.path` inside the model directory, with
 * exactly `entry.link` as its target: made in `.modelsync/tmp/`, then
 * renamed into place (replacing a file or link there, never writing through
 * one). Refuses a target that would leave the model (lexically; the manifest
 * reader already checked it through the manifest's other links). Returns the
 * link's own mtime and size, to record in the base.
 */
export async function placeLink(
  repoDir: string,
  model: ModelRef,
  entry: { path: string; link: string },
  opts: { dataDir: string },
): Promise<{ mtimeMs: number; size: number }> {
  checkPath(model, entry.path);
  const bad = linkTargetProblem(entry.link);
  const r = resolveLink(entry.path, entry.link, { lookup: () => undefined });
  if (bad !== undefined || r.kind !== "inside") {
    throw new CorruptError(
      `Refusing link ${JSON.stringify(entry.path)} of ${formatRef(model)}: it is ${
        bad ?? leavesProblem(entry.link, "")
      }. Nothing was written. Repair or re-push the model from a good copy.`,
    );
  }
  const root = join(repoDir, opts.dataDir);
  await Deno.mkdir(root, { recursive: true });
  const modelSegs = [...model.type.split("/"), model.id];
  const fileSegs = entry.path.split("/");
  const parent = ensureDirs(root, [...modelSegs, ...fileSegs.slice(0, -1)], {
    model,
    file: entry.path,
    inModelFrom: modelSegs.length,
  });
  const target = join(parent, fileSegs[fileSegs.length - 1]);
  const existing = lstatEntry(target);
  if (existing?.isDirectory) {
    throw new ConflictError(
      `Cannot write ${entry.path} of ${formatRef(model)}: a directory is in the way. ` +
        `Move it aside and run "modelsync pull" again.`,
      { paths: [entry.path] },
    );
  }
  const dir = tmpDir(repoDir);
  await Deno.mkdir(dir, { recursive: true });
  let made = join(dir, `${randomBytes(12).toString("hex")}.link`);
  await Deno.symlink(entry.link, made);
  try {
    await Deno.rename(made, target);
  } catch (err) {
    await Deno.remove(made).catch(() => {});
    if (!isCrossDevice(err)) throw err;
    // dataDir on another filesystem: make it beside the target, then rename.
    made = join(parent, `.modelsync-${randomBytes(8).toString("hex")}.link`);
    await Deno.symlink(entry.link, made);
    await Deno.rename(made, target).catch(async (renameErr) => {
      await Deno.remove(made).catch(() => {});
      throw renameErr;
    });
  }
  const info = await Deno.lstat(target);
  return { mtimeMs: info.mtime?.getTime() ?? 0, size: info.size };
}

/** Names up to this many UTF-8 bytes fit every common file system (eCryptfs allows 143). */
const SAFE_NAME_BYTES = 143;
const encoder = new TextEncoder();

/**
 * Refuses, before anything is downloaded or written, to land paths with a
 * name too long for the file system holding the data folder: each long name
 * is looked up there once (`lstat` says ENAMETOOLONG without creating
 * anything). Throws the one-line local fault (exit 2) naming the path.
 */
export async function assertNamesFit(
  repoDir: string,
  model: ModelRef,
  opts: { paths: readonly string[]; dataDir: string },
): Promise<void> {
  const data = join(repoDir, opts.dataDir);
  // The data folder decides (it may be a link to another disk); before it exists, the repository.
  const root = tryOrNull(() => lstatEntry(data)) === null ? repoDir : data;
  const probed = new Set<string>();
  for (const p of opts.paths) {
    if (p.length <= SAFE_NAME_BYTES / 3) continue; // no name in it can be long
    for (const name of p.split("/")) {
      if (name.length <= SAFE_NAME_BYTES / 3 || probed.has(name)) continue;
      if (encoder.encode(name).length <= SAFE_NAME_BYTES) continue;
      probed.add(name);
      try {
        await Deno.lstat(join(root, name));
      } catch (err) {
        if ((err as { code?: string }).code === "ENAMETOOLONG") {
          throw localFault(err, join(modelDir(repoDir, opts.dataDir, model), p));
        }
      }
    }
  }
}

function tryOrNull<T>(f: () => T): T | null {
  try {
    return f();
  } catch {
    return null;
  }
}

function isCrossDevice(err: unknown): boolean {
  return (err as { code?: string }).code === "EXDEV" ||
    /cross-device|EXDEV/i.test(String((err as Error).message));
}

/**
 * Deletes one file of a model (missing is fine), then the directories it
 * leaves empty, up to but not including the model directory. Refuses to go
 * through a symlinked directory.
 */
export async function removeFile(
  repoDir: string,
  model: ModelRef,
  path: string,
  opts: { dataDir: string },
): Promise<void> {
  checkPath(model, path);
  const base = modelDir(repoDir, opts.dataDir, model);
  const modelSegs = [...model.type.split("/"), model.id];
  const segs = path.split("/");
  const dirSegs = [...modelSegs, ...segs.slice(0, -1)];
  let dir = join(repoDir, opts.dataDir);
  for (let i = 0; i < dirSegs.length; i++) {
    dir = join(dir, dirSegs[i]);
    const info = lstatEntry(dir);
    if (info === null) return; // nothing there to delete
    if (info.isSymlink) {
      const where = i < modelSegs.length ? dir : dirSegs.slice(modelSegs.length, i + 1).join("/");
      throw new UsageError(
        `Cannot delete ${path} of ${formatRef(model)}: ${where} is a symlink, and modelsync ` +
          `never deletes through symlinks. Replace it with a real directory.`,
      );
    }
    if (!info.isDirectory) return; // a file where a directory was: not ours to delete
  }
  const target = join(dir, segs[segs.length - 1]);
  const info = lstatEntry(target);
  if (info === null || info.isDirectory) return;
  try {
    await Deno.remove(target);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  for (let n = segs.length - 1; n > 0; n--) {
    try {
      await Deno.remove(join(base, ...segs.slice(0, n)));
    } catch {
      return; // not empty (or already gone): stop climbing
    }
  }
}

/**
 * Removes what killed runs left in `.modelsync/tmp`. Call it while holding
 * the repository lock, so no download of this repository is in progress.
 */
export async function cleanTmp(repoDir: string): Promise<void> {
  try {
    await Deno.remove(tmpDir(repoDir), { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}
