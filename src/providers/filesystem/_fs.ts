/**
 * Private helpers of the filesystem provider: error mapping, temporary
 * files, atomic placement (`link` for create-exclusive, `rename` for
 * replace; both create a missing parent directory and try once more) and
 * the local-disk test.
 *
 * @module
 */
import { dirname } from "node:path";
import { randomBytes } from "node:crypto";
import { DatastoreError, errnoOf, ModelsyncError, NotFoundError } from "../../errors.ts";
import { readToEndSync } from "../../model/hash.ts";
import { type Entry, lstatEntry } from "../../repo/entry.ts";

/** Codes of faults worth retrying (flaky disk, NFS server hiccup). */
const TRANSIENT = new Set(["EIO", "EAGAIN", "EBUSY", "ETIMEDOUT", "ESTALE", "EINTR", "ECONNRESET"]);
const DENIED = "permission denied. Check the ownership and permissions of the datastore directory.";
const FULL = "no space left on the device (or quota exceeded). Free space on the datastore volume.";
/** What went wrong and the remedy, for the faults that have a known one. */
const REMEDIES = new Map([
  ["EACCES", DENIED],
  ["EPERM", DENIED],
  ["EROFS", "the file system is read-only. Mount the datastore read-write."],
  ["ENOSPC", FULL],
  ["EDQUOT", FULL],
]);

/** True for "no such file or directory". */
export function isNotFound(err: unknown): boolean {
  return err instanceof Deno.errors.NotFound || errnoOf(err) === "ENOENT";
}

/** True for "file exists" (a lost create-exclusive). */
export function isExists(err: unknown): boolean {
  return err instanceof Deno.errors.AlreadyExists || errnoOf(err) === "EEXIST";
}

function isAbort(err: unknown): boolean {
  return err instanceof DOMException && (err.name === "AbortError" || err.name === "TimeoutError");
}

/**
 * The file system calls of this provider, as promises, in two kinds:
 * {@linkcode ASYNC_FS} runs Deno's async calls, each a hop to a thread pool
 * and back; {@linkcode SYNC_FS} runs their synchronous twins, for a
 * datastore on a local disk ({@linkcode isLocalDisk}), where a metadata
 * call takes microseconds and the hop costs several times the call (on a
 * first push of 1,000 models, most of the system time went to the hops of
 * the record writes). On a network mount every call stays async: a hung
 * server would block a synchronous call beyond any deadline.
 */
export interface FsCalls {
  lstat(path: string): Promise<Deno.FileInfo>;
  /**
   * The entry at `path`, or null when nothing is there (it or a parent is
   * missing, or a parent is not a directory): absence is an answer, not a
   * thrown error (building a NotFound error costs several times the call, and
   * a first push asks about a missing record directory for every model).
   */
  lstatOrNull(path: string): Promise<Entry | null>;
  readDir(path: string): Promise<Deno.DirEntry[]>;
  mkdir(path: string, opts?: Deno.MkdirOptions): Promise<void>;
  link(from: string, to: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  /** Writes a new file (create-exclusive). */
  writeNew(path: string, bytes: Uint8Array, signal?: AbortSignal): Promise<void>;
  /** A whole file, and the stat of the handle that read it (so the two agree). */
  readWithStat(path: string): Promise<{ bytes: Uint8Array; info: Deno.FileInfo }>;
}

/** Deno's async calls: for any file system, network mounts included. */
export const ASYNC_FS: FsCalls = {
  lstat: (path) => Deno.lstat(path),
  lstatOrNull: (path) =>
    Deno.lstat(path).catch((err) => {
      if (isNotFound(err) || err instanceof Deno.errors.NotADirectory) return null;
      throw err;
    }),
  readDir: (path) => Array.fromAsync(Deno.readDir(path)),
  mkdir: (path, opts) => Deno.mkdir(path, opts),
  link: (from, to) => Deno.link(from, to),
  rename: (from, to) => Deno.rename(from, to),
  remove: (path) => Deno.remove(path),
  writeNew: (path, bytes, signal) => Deno.writeFile(path, bytes, { createNew: true, signal }),
  async readWithStat(path) {
    using file = await Deno.open(path, { read: true });
    const info = await file.stat();
    const bytes = new Uint8Array(await new Response(file.readable).arrayBuffer());
    return { bytes, info };
  },
};

/** The result of a synchronous call as a settled promise. */
function settled<T>(call: () => T): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Synchronous calls, for a datastore on a local disk only. */
export const SYNC_FS: FsCalls = {
  lstat: (path) => settled(() => Deno.lstatSync(path)),
  lstatOrNull: (path) => settled(() => lstatEntry(path)),
  readDir: (path) => settled(() => Array.from(Deno.readDirSync(path))),
  mkdir: (path, opts) => settled(() => Deno.mkdirSync(path, opts)),
  link: (from, to) => settled(() => Deno.linkSync(from, to)),
  rename: (from, to) => settled(() => Deno.renameSync(from, to)),
  remove: (path) => settled(() => Deno.removeSync(path)),
  writeNew: (path, bytes, signal) =>
    settled(() => {
      signal?.throwIfAborted();
      Deno.writeFileSync(path, bytes, { createNew: true });
    }),
  readWithStat: (path) =>
    settled(() => {
      using file = Deno.openSync(path, { read: true });
      const info = file.statSync();
      return { bytes: readToEndSync(file, info.size), info };
    }),
};

/**
 * Maps an unexpected filesystem error to a one-line modelsync error naming
 * the path and a remedy. Modelsync errors and aborts pass through unchanged.
 */
export function fsFail(err: unknown, what: string, path: string): unknown {
  if (err instanceof ModelsyncError || isAbort(err)) return err;
  const code = errnoOf(err) ?? "";
  const head = `Cannot ${what} ${path}`;
  if (code === "ENOENT") {
    return new NotFoundError(
      `${head}: it does not exist. Check that the datastore is mounted and initialised ` +
        `("modelsync init").`,
      { cause: err },
    );
  }
  const detail = ((err as Error)?.message ?? String(err)).split("\n")[0];
  const why = REMEDIES.get(code) ?? `${detail}. Check the datastore directory and retry.`;
  return new DatastoreError(`${head}: ${why}`, { retryable: TRANSIENT.has(code), cause: err });
}

/** Removes a file, ignoring "already gone" and any other error (best effort cleanup). */
export async function removeQuietly(path: string, fs: FsCalls = ASYNC_FS): Promise<void> {
  // Best effort: a leftover temp file is harmless and unique.
  await fs.remove(path).catch(() => {});
}

/** Creates `dir` and its parents; maps errors. */
export async function mkdirp(dir: string, fs: FsCalls = ASYNC_FS): Promise<void> {
  await fs.mkdir(dir, { recursive: true }).catch((err) => {
    throw fsFail(err, "create directory", dir);
  });
}

/**
 * Runs `op`, which creates `path`; when that fails with NotFound, creates
 * the parent directory (not recursively when `recursive` is false: a
 * missing datastore root is never recreated) and runs `op` once more.
 */
async function withParent<T>(
  path: string,
  op: () => Promise<T>,
  fs: FsCalls,
  recursive = true,
): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (recursive) await mkdirp(dirname(path), fs);
  else {
    await fs.mkdir(dirname(path)).catch((err) => {
      if (!isExists(err)) throw fsFail(err, "create directory", dirname(path));
    });
  }
  return await op();
}

/** Creates temporary files under one directory with unique names. */
export class TempFiles {
  readonly dir: string;
  readonly #prefix: string;
  #counter = 0;

  constructor(dir: string, pid: number) {
    this.dir = dir;
    this.#prefix = `${pid}-${randomBytes(6).toString("hex")}-`;
  }

  /** A fresh unique path inside the temp directory (nothing is created). */
  name(tag = "t"): string {
    this.#counter++;
    // `dir` is normalized (made by join) and the name has no separator: no join needed.
    return `${this.dir}/${this.#prefix}${tag}${this.#counter}`;
  }

  /**
   * Writes `data` (bytes, or a fresh stream per attempt) to a new temp file
   * and returns its path; a failed write leaves no file. The temp directory
   * is created when missing, never the datastore root. Bytes go through
   * `fs`; a stream is always written with async calls.
   */
  async write(
    data: Uint8Array | (() => ReadableStream<Uint8Array>),
    opts: { signal?: AbortSignal; tag?: string; fs?: FsCalls } = {},
  ): Promise<string> {
    const { signal, fs = ASYNC_FS } = opts;
    const path = this.name(opts.tag);
    const op = () =>
      typeof data === "function"
        ? Deno.writeFile(path, data(), { createNew: true, signal })
        : fs.writeNew(path, data, signal);
    try {
      await withParent(path, op, fs, false);
      return path;
    } catch (err) {
      await removeQuietly(path, fs);
      throw fsFail(err, "write a temporary file", path);
    }
  }
}

/**
 * Create-exclusive: hard-links `tmp` to `target`, creating the target's
 * directory when missing. Returns false when `target` already exists.
 * `tmp` must be a fresh file of this call with no other link. Never removes
 * `tmp`; the caller does, in `finally`.
 */
export async function linkExclusive(
  tmp: string,
  target: string,
  fs: FsCalls = ASYNC_FS,
): Promise<boolean> {
  try {
    await withParent(target, () => fs.link(tmp, target), fs);
    return true;
  } catch (err) {
    if (!isExists(err)) throw fsFail(err, "create", target);
    // On NFS a retransmitted link whose first reply was lost reports EEXIST
    // although it succeeded: our temp file then has a second link (man 2 open).
    return ((await fs.lstat(tmp).catch(() => undefined))?.nlink ?? 1) >= 2;
  }
}

/** Replace: renames `tmp` over `target`, creating the target's directory when missing. */
export async function renameInto(
  tmp: string,
  target: string,
  what = "replace",
  fs: FsCalls = ASYNC_FS,
): Promise<void> {
  await withParent(target, () => fs.rename(tmp, target), fs).catch((err) => {
    throw fsFail(err, what, target);
  });
}

/** Reads a directory's entries; a missing directory reads as empty. */
export async function readDirOrEmpty(
  dir: string,
  signal?: AbortSignal,
  fs: FsCalls = ASYNC_FS,
): Promise<Deno.DirEntry[]> {
  signal?.throwIfAborted();
  try {
    return await fs.readDir(dir);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw fsFail(err, "list directory", dir);
  }
}

/** File system types of local disks (and memory), per /proc/self/mountinfo. */
const LOCAL_FS_TYPES = new Set(
  "ext2 ext3 ext4 xfs btrfs bcachefs f2fs jfs zfs tmpfs ramfs overlay".split(" "),
);

/**
 * True when `dir` lies on a local disk file system (Linux only; anything
 * unknown, such as NFS, SMB or FUSE, is false). On a local disk a small file
 * is written with synchronous calls, which cost a fraction of async ones in
 * Deno; on a network mount a hung server would block such a call beyond any
 * deadline, so there every call stays async.
 */
export async function isLocalDisk(dir: string): Promise<boolean> {
  if (Deno.build.os !== "linux") return false;
  try {
    const real = await Deno.realPath(dir);
    const text = await Deno.readTextFile("/proc/self/mountinfo");
    let best = "";
    let type = "";
    for (const line of text.split("\n")) {
      // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPEROPTIONS
      const fields = line.split(" ");
      const dash = fields.indexOf("-");
      if (fields.length < 5 || dash < 0) continue;
      const point = fields[4].replace(
        /\\([0-7]{3})/g,
        (_, o) => String.fromCharCode(parseInt(o, 8)),
      );
      const inside = point === "/" || real === point || real.startsWith(point + "/");
      if (inside && point.length >= best.length) {
        best = point;
        type = fields[dash + 1] ?? "";
      }
    }
    return LOCAL_FS_TYPES.has(type);
  } catch {
    return false;
  }
}
