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
import { libc } from "../libc.ts";

const O_RDONLY_CLOEXEC = 0o2000000;
const ENOENT = 2;
const EINTR = 4;

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
  const c = libc();
  const cPath = c?.cPath(path);
  if (!c || !cPath) return undefined;
  const fd = c.symbols.open(cPath, O_RDONLY_CLOEXEC);
  if (fd < 0) {
    if (c.errno() !== ENOENT) return undefined;
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
      const rest = buf.subarray(size) as Uint8Array<ArrayBuffer>;
      const n = Number(c.symbols.read(fd, rest, BigInt(rest.length)));
      if (n === 0) break;
      if (n < 0) {
        if (c.errno() === EINTR) continue;
        return undefined;
      }
      size += n;
    }
    return buf.subarray(0, size);
  } finally {
    c.symbols.close(fd);
  }
}
