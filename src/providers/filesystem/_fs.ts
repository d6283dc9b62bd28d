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
export async function removeQuietly(path: string): Promise<void> {
  // Best effort: a leftover temp file is harmless and unique.
  await Deno.remove(path).catch(() => {});
}

/** Creates `dir` and its parents; maps errors. */
export async function mkdirp(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true }).catch((err) => {
    throw fsFail(err, "create directory", dir);
  });
}

/**
 * Runs `op`, which creates `path`; when that fails with NotFound, creates
 * the parent directory (not recursively when `recursive` is false: a
 * missing datastore root is never recreated) and runs `op` once more.
 */
async function withParent<T>(path: string, op: () => Promise<T>, recursive = true): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (recursive) await mkdirp(dirname(path));
  else {
    await Deno.mkdir(dirname(path)).catch((err) => {
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
   * is created when missing, never the datastore root.
   */
  async write(
    data: Uint8Array | (() => ReadableStream<Uint8Array>),
    signal?: AbortSignal,
    tag?: string,
  ): Promise<string> {
    const path = this.name(tag);
    const op = () =>
      Deno.writeFile(path, typeof data === "function" ? data() : data, { createNew: true, signal });
    try {
      await withParent(path, op, false);
      return path;
    } catch (err) {
      await removeQuietly(path);
      throw fsFail(err, "write a temporary file", path);
    }
  }

  /** {@linkcode TempFiles.write} of bytes with synchronous calls (small files on a local disk). */
  writeSync(bytes: Uint8Array, tag?: string): string {
    const path = this.name(tag);
    try {
      try {
        Deno.writeFileSync(path, bytes, { createNew: true });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        try {
          Deno.mkdirSync(this.dir); // it vanished; not recursive, as in write()
        } catch (err) {
          if (!isExists(err)) throw err;
        }
        Deno.writeFileSync(path, bytes, { createNew: true });
      }
      return path;
    } catch (err) {
      try {
        Deno.removeSync(path);
      } catch {
        // Best effort, as removeQuietly.
      }
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
export async function linkExclusive(tmp: string, target: string): Promise<boolean> {
  try {
    await withParent(target, () => Deno.link(tmp, target));
    return true;
  } catch (err) {
    if (!isExists(err)) throw fsFail(err, "create", target);
    // On NFS a retransmitted link whose first reply was lost reports EEXIST
    // although it succeeded: our temp file then has a second link (man 2 open).
    return ((await Deno.lstat(tmp).catch(() => undefined))?.nlink ?? 1) >= 2;
  }
}

/** Replace: renames `tmp` over `target`, creating the target's directory when missing. */
export async function renameInto(tmp: string, target: string, what = "replace"): Promise<void> {
  await withParent(target, () => Deno.rename(tmp, target)).catch((err) => {
    throw fsFail(err, what, target);
  });
}

/** {@linkcode renameInto} with synchronous calls (small blobs on a local disk). */
export function renameIntoSync(tmp: string, target: string, what = "replace"): void {
  try {
    try {
      Deno.renameSync(tmp, target);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      Deno.mkdirSync(dirname(target), { recursive: true });
      Deno.renameSync(tmp, target);
    }
  } catch (err) {
    throw fsFail(err, what, target);
  }
}

/** Reads a directory's entries; a missing directory reads as empty. */
export async function readDirOrEmpty(dir: string, signal?: AbortSignal): Promise<Deno.DirEntry[]> {
  signal?.throwIfAborted();
  try {
    return await Array.fromAsync(Deno.readDir(dir));
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
