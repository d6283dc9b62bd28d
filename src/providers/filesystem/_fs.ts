/**
 * Private helpers of the filesystem provider: error mapping,
 * temporary files, atomic placement (`link` for create-exclusive, `rename`
 * for replace) and a bounded parallel map.
 *
 * @module
 */
import { dirname } from "node:path";
import { randomBytes } from "node:crypto";
import { DatastoreError, ModelsyncError, NotFoundError } from "../../errors.ts";

/** Codes of faults worth retrying (flaky disk, NFS server hiccup). */
const TRANSIENT = new Set(["EIO", "EAGAIN", "EBUSY", "ETIMEDOUT", "ESTALE", "EINTR", "ECONNRESET"]);

/** The errno-style code of a Deno or node error, if any. */
export function errCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** True for "no such file or directory". */
export function isNotFound(err: unknown): boolean {
  return err instanceof Deno.errors.NotFound || errCode(err) === "ENOENT";
}

/** True for "file exists" (a lost create-exclusive). */
export function isExists(err: unknown): boolean {
  return err instanceof Deno.errors.AlreadyExists || errCode(err) === "EEXIST";
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
  const code = errCode(err) ?? "";
  const head = `Cannot ${what} ${path}`;
  if (code === "ENOENT") {
    return new NotFoundError(
      `${head}: it does not exist. Check that the datastore is mounted and initialised ` +
        `("modelsync init").`,
      { cause: err },
    );
  }
  if (code === "EACCES" || code === "EPERM") {
    return new DatastoreError(
      `${head}: permission denied. Check the ownership and permissions of the datastore directory.`,
      { cause: err },
    );
  }
  if (code === "EROFS") {
    return new DatastoreError(
      `${head}: the file system is read-only. Mount the datastore read-write.`,
      { cause: err },
    );
  }
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new DatastoreError(
      `${head}: no space left on the device (or quota exceeded). Free space on the datastore volume.`,
      { cause: err },
    );
  }
  const message = (err as Error)?.message ?? String(err);
  return new DatastoreError(
    `${head}: ${message.split("\n")[0]}. Check the datastore directory and retry.`,
    { retryable: TRANSIENT.has(code), cause: err },
  );
}

/** Removes a file, ignoring "already gone" and any other error (best effort cleanup). */
export async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch {
    // Best effort: a leftover temp file is harmless and unique.
  }
}

/** Creates temporary files under one directory with unique names. */
export class TempFiles {
  readonly dir: string;
  readonly #prefix: string;
  #counter = 0;
  #ready = false;

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
   * Makes sure the temp directory exists (once per process, or after it
   * vanished). Not recursive: a missing datastore root is never recreated.
   */
  async ensure(): Promise<void> {
    if (this.#ready) return;
    try {
      await Deno.mkdir(this.dir);
    } catch (err) {
      if (!isExists(err)) throw fsFail(err, "create the temp directory", this.dir);
    }
    this.#ready = true;
  }

  /** {@linkcode TempFiles.write} with synchronous calls (small files on a local disk). */
  writeSync(bytes: Uint8Array, tag?: string): string {
    const path = this.name(tag);
    for (let attempt = 0;; attempt++) {
      try {
        Deno.writeFileSync(path, bytes, { createNew: true });
        return path;
      } catch (err) {
        if (isNotFound(err) && attempt === 0) {
          try {
            Deno.mkdirSync(this.dir); // it vanished; not recursive, as ensure()
          } catch (err) {
            if (!isExists(err)) throw fsFail(err, "create the temp directory", this.dir);
          }
          continue;
        }
        try {
          Deno.removeSync(path);
        } catch {
          // Best effort, as removeQuietly.
        }
        throw fsFail(err, "write a temporary file", path);
      }
    }
  }

  /** Writes `bytes` to a new temp file and returns its path. */
  async write(bytes: Uint8Array, signal?: AbortSignal, tag?: string): Promise<string> {
    const path = this.name(tag);
    for (let attempt = 0;; attempt++) {
      try {
        await Deno.writeFile(path, bytes, { createNew: true, signal });
        return path;
      } catch (err) {
        if (isNotFound(err) && attempt === 0) {
          this.#ready = false;
          await this.ensure();
          continue;
        }
        await removeQuietly(path);
        throw fsFail(err, "write a temporary file", path);
      }
    }
  }
}

/** File system types of local disks (and memory), per /proc/self/mountinfo. */
const LOCAL_FS_TYPES = new Set([
  "ext2",
  "ext3",
  "ext4",
  "xfs",
  "btrfs",
  "bcachefs",
  "f2fs",
  "jfs",
  "zfs",
  "tmpfs",
  "ramfs",
  "overlay",
]);

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

/** Creates `dir` and its parents; maps errors. */
export async function mkdirp(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (err) {
    throw fsFail(err, "create directory", dir);
  }
}

/**
 * Create-exclusive: hard-links `tmp` to `target`, creating the target's
 * directory when missing. Returns false when `target` already exists.
 * `tmp` must be a fresh file of this call with no other link. Never removes
 * `tmp`; the caller does, in `finally`.
 */
export async function linkExclusive(tmp: string, target: string): Promise<boolean> {
  for (let attempt = 0;; attempt++) {
    try {
      await Deno.link(tmp, target);
      return true;
    } catch (err) {
      // On NFS a retransmitted link whose first reply was lost reports EEXIST
      // although it succeeded: our temp file then has a second link (man 2 open).
      if (isExists(err)) return (await linkCount(tmp)) >= 2;
      if (isNotFound(err) && attempt === 0) {
        await mkdirp(dirname(target));
        continue;
      }
      throw fsFail(err, "create", target);
    }
  }
}

async function linkCount(path: string): Promise<number> {
  try {
    return (await Deno.lstat(path)).nlink ?? 1;
  } catch {
    return 1;
  }
}

/** Replace: renames `tmp` over `target`, creating the target's directory when missing. */
export async function renameInto(tmp: string, target: string): Promise<void> {
  for (let attempt = 0;; attempt++) {
    try {
      await Deno.rename(tmp, target);
      return;
    } catch (err) {
      if (isNotFound(err) && attempt === 0) {
        await mkdirp(dirname(target));
        continue;
      }
      throw fsFail(err, "replace", target);
    }
  }
}

/** Reads a directory's entries; a missing directory reads as empty. */
export async function readDirOrEmpty(dir: string, signal?: AbortSignal): Promise<Deno.DirEntry[]> {
  signal?.throwIfAborted();
  const out: Deno.DirEntry[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw fsFail(err, "list directory", dir);
  }
  return out;
}
