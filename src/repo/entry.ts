/**
 * `lstatEntry`: what is at a path in the working tree (a link is not
 * followed), or null when nothing is, with one synchronous call.
 *
 * Landing asks this several times per file (is anything in the way, is
 * every parent a real directory, did the user change it since the scan), so
 * its cost is per file of a first pull. Measured per call on this project's
 * 2-core machine: an async `Deno.lstat` of a missing path 47 µs (a hop to a
 * thread pool, then a NotFound error built and thrown), a synchronous one
 * 7 µs (the error) and about 3 µs for a path that exists (a `Deno.FileInfo`
 * of 20 fields and three `Date`s), against about 1 µs for the C library's
 * `statx` through Deno's FFI into one reused buffer, which answers absence
 * with an errno, not an error. So on Linux, when the C library can be
 * opened and FFI is permitted, `statx` answers (the fields callers use,
 * read from its buffer); anywhere else, a plain `Deno.lstatSync`, with the
 * same results. Any failure other than absence is left to `Deno.lstatSync`,
 * which throws it as Deno does.
 *
 * The calls are synchronous on purpose: the working tree is the user's own
 * disk, where a metadata call takes microseconds (datastore calls, which
 * may be remote, stay asynchronous and have deadlines).
 *
 * @example
 * ```ts
 * import { lstatEntry } from "./entry.ts";
 * console.log(lstatEntry("/nonexistent/x")); // null
 * console.log(lstatEntry("/")?.isDirectory); // true
 * ```
 * @module
 */
import { libc } from "../libc.ts";

/** What {@linkcode lstatEntry} tells of an entry: the fields of `Deno.FileInfo` callers use. */
export type Entry = Pick<
  Deno.FileInfo,
  "isFile" | "isDirectory" | "isSymlink" | "size" | "mtime" | "mode" | "ino" | "dev"
>;

/** errno values that mean "nothing at this path". */
const ENOENT = 2;
const ENOTDIR = 20;
const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
/** STATX_TYPE | STATX_MODE | STATX_MTIME | STATX_INO | STATX_SIZE. */
const STATX_MASK = 0x1 | 0x2 | 0x40 | 0x100 | 0x200;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/** The entry, null for absence, or undefined to let `Deno.lstatSync` answer. */
type Probe = (path: string) => Entry | null | undefined;

let probe: Probe | null | undefined;

/** The `statx` probe, or null where it cannot be had (see `libc`). */
function loadProbe(): Probe | null {
  const c = libc();
  if (c === null) return null;
  // struct statx (linux/stat.h), the same on every architecture.
  const stx = new Uint8Array(256);
  const view = new DataView(stx.buffer);
  const { statx } = c.symbols;
  return (path: string) => {
    const buf = c.cPath(path);
    // Too long for the buffer (or for the kernel): let lstat answer.
    if (buf === null) return undefined;
    if (statx(AT_FDCWD, buf, AT_SYMLINK_NOFOLLOW, STATX_MASK, stx) !== 0) {
      const e = c.errno();
      return e === ENOENT || e === ENOTDIR ? null : undefined;
    }
    if ((view.getUint32(0, true) & STATX_MASK) !== STATX_MASK) return undefined;
    const mode = view.getUint16(28, true);
    const type = mode & S_IFMT;
    const size = view.getUint32(40, true) + view.getUint32(44, true) * 2 ** 32;
    const sec = view.getUint32(112, true) + view.getInt32(116, true) * 2 ** 32;
    // Milliseconds, truncated, as Deno's FileInfo.mtime has them.
    const ms = sec * 1000 + Math.floor(view.getUint32(120, true) / 1e6);
    return {
      isFile: type === S_IFREG,
      isDirectory: type === S_IFDIR,
      isSymlink: type === S_IFLNK,
      size,
      mtime: new Date(ms),
      mode,
      ino: view.getUint32(32, true) + view.getUint32(36, true) * 2 ** 32,
      // Not the kernel's dev_t encoding: comparable only with another lstatEntry.
      dev: view.getUint32(136, true) * 2 ** 32 + view.getUint32(140, true),
    };
  };
}

/**
 * The entry at `path` itself (a symbolic link is not followed), or null when
 * there is none there (missing, or a parent is missing or not a directory).
 * Any other failure (permission denied, say) is thrown, as `Deno.lstatSync`
 * throws it.
 */
export function lstatEntry(path: string): Entry | null {
  if (probe === undefined) probe = loadProbe();
  if (probe !== null) {
    const found = probe(path);
    if (found !== undefined) return found;
  }
  try {
    return Deno.lstatSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return null;
    }
    throw err;
  }
}
