/**
 * Reading a small file whole with the C library's `open`, `read` and
 * `close` through Deno's FFI: what a scan (to hash a file) and a pack build
 * (to check and pack it) do once per small file. Measured per 1 KiB file on
 * this project's 2-core machine, in a worker: `Deno.openSync` 6–8 µs (a
 * resource, a permission check, an object), a read and a close about 4 µs
 * more; the three calls through FFI about 3 µs in all.
 *
 * Only when FFI is already permitted and the C library opens (Linux, glibc);
 * anywhere else {@linkcode readFileNative} answers undefined and the caller
 * reads with Deno's calls, as it does after any failure other than a
 * missing file, so every error a user sees is Deno's own.
 *
 * @module
 */

const O_RDONLY_CLOEXEC = 0o2000000;
const ENOENT = 2;
const EINTR = 4;

interface Native {
  open(path: Uint8Array): number;
  read(fd: number, buf: Uint8Array): number;
  close(fd: number): void;
  errno(): number;
}

let native: Native | null | undefined;

function load(): Native | null {
  if (Deno.build.os !== "linux") return null;
  try {
    // Only when already allowed: asking would prompt on a terminal.
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
    const lib = Deno.dlopen("libc.so.6", {
      open: { parameters: ["buffer", "i32"], result: "i32" },
      read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
      close: { parameters: ["i32"], result: "i32" },
      __errno_location: { parameters: [], result: "pointer" },
    });
    const where = lib.symbols.__errno_location();
    if (where === null) return null;
    // errno is per thread; FFI calls run on the calling thread, whose errno this is.
    const errno = new Deno.UnsafePointerView(where);
    const s = lib.symbols;
    return {
      open: (path) => s.open(path as Uint8Array<ArrayBuffer>, O_RDONLY_CLOEXEC),
      read: (fd, buf) => Number(s.read(fd, buf as Uint8Array<ArrayBuffer>, BigInt(buf.length))),
      close: (fd) => void s.close(fd),
      errno: () => errno.getInt32(),
    };
  } catch {
    return null;
  }
}

const encoder = new TextEncoder();
const pathBuf = new Uint8Array(4097);

/**
 * The content of the file at `path` (links followed), read from its start:
 * the whole file, or with `max` at most `max` bytes. `sizeHint` (its size as
 * last seen) sizes the first read. A missing file throws
 * `Deno.errors.NotFound`, as `Deno.openSync` does; undefined means "read it
 * with Deno's calls" (no FFI here, a path too long for the buffer, or any
 * other failure, which Deno's calls then report).
 */
export function readFileNative(
  path: string,
  opts: { sizeHint: number; max?: number },
): Uint8Array | undefined {
  if (native === undefined) native = load();
  if (native === null) return undefined;
  const { read, written } = encoder.encodeInto(path, pathBuf);
  if (read < path.length || written >= pathBuf.length - 1) return undefined;
  pathBuf[written] = 0;
  const fd = native.open(pathBuf);
  if (fd < 0) {
    if (native.errno() !== ENOENT) return undefined;
    throw new Deno.errors.NotFound(`No such file or directory (os error 2): open '${path}'`);
  }
  try {
    const max = opts.max ?? Infinity;
    let buf = new Uint8Array(Math.min(opts.sizeHint + 1, max));
    let size = 0;
    while (size < max) {
      if (size === buf.length) {
        const bigger = new Uint8Array(Math.min(buf.length * 2, max));
        bigger.set(buf);
        buf = bigger;
      }
      const n = native.read(fd, buf.subarray(size));
      if (n === 0) break;
      if (n < 0) {
        if (native.errno() === EINTR) continue;
        return undefined;
      }
      size += n;
    }
    return buf.subarray(0, size);
  } finally {
    native.close(fd);
  }
}
