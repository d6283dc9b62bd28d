/**
 * `lstatEntry`: what is at a path in the working tree (a link is not
 * followed), or null when nothing is, with a synchronous call.
 *
 * Landing asks this several times per file (is anything in the way, did the
 * user change it since the scan), and on a first pull nearly every answer is
 * "nothing". Measured per call on this project's 2-core machine: an async
 * `Deno.lstat` of a missing path 47 µs (a hop to a thread pool, then a
 * NotFound error built and thrown), a synchronous one 7 µs (the error), and
 * the C library's `faccessat(…, AT_SYMLINK_NOFOLLOW)` through Deno's FFI
 * 2.9 µs (no error object: an errno). So on Linux, when the C library can be
 * opened, absence is asked of `faccessat` first; anywhere else, or when FFI
 * is not permitted, a plain `Deno.lstatSync` answers, with the same results.
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

/** errno values that mean "nothing at this path". */
const ENOENT = 2;
const ENOTDIR = 20;
const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const F_OK = 0;

interface Probe {
  /** 0: something is there; else the errno. */
  (path: string): number;
}

let probe: Probe | null | undefined;

/** The `faccessat` probe, or null where it cannot be had (not Linux, no FFI permission). */
function loadProbe(): Probe | null {
  if (Deno.build.os !== "linux") return null;
  try {
    // Only when already allowed: asking would prompt on a terminal, in the middle of a pull.
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
    const lib = Deno.dlopen("libc.so.6", {
      faccessat: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
      __errno_location: { parameters: [], result: "pointer" },
    });
    const where = lib.symbols.__errno_location();
    if (where === null) return null;
    // errno is per thread; FFI calls run on the calling (main) thread, whose errno this is.
    const errno = new Deno.UnsafePointerView(where);
    const encoder = new TextEncoder();
    const buf = new Uint8Array(4097);
    return (path: string) => {
      const { read, written } = encoder.encodeInto(path, buf);
      // Too long for the buffer (or for the kernel): let lstat answer.
      if (read < path.length || written >= buf.length - 1) return -1;
      buf[written] = 0;
      return lib.symbols.faccessat(AT_FDCWD, buf, F_OK, AT_SYMLINK_NOFOLLOW) === 0
        ? 0
        : errno.getInt32();
    };
  } catch {
    return null; // no --allow-ffi, or no libc.so.6 (musl): the portable path
  }
}

/**
 * The entry at `path` itself (a symbolic link is not followed), or null when
 * there is none there (missing, or a parent is missing or not a directory).
 * Any other failure (permission denied, say) is thrown, as `Deno.lstatSync`
 * throws it.
 */
export function lstatEntry(path: string): Deno.FileInfo | null {
  if (probe === undefined) probe = loadProbe();
  if (probe !== null) {
    const errno = probe(path);
    if (errno === ENOENT || errno === ENOTDIR) return null;
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
