/**
 * The C library through Deno's FFI, for the per-file calls of the working
 * tree where Deno's own calls cost several times the system call
 * (`src/repo/entry.ts`: `statx`; `src/model/read_native.ts`: `open`, `read`,
 * `close`). Opened once per thread, on Linux only, and only when FFI is
 * already permitted (asking would prompt on a terminal, in the middle of a
 * sync); anywhere else {@linkcode libc} is null and callers use Deno's calls.
 *
 * @module
 */

const SYMBOLS = {
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** The C library's calls this project uses, `errno`, and a path as C wants it. */
export interface Libc {
  symbols: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
  /** The calling thread's errno. */
  errno(): number;
  /**
   * `path` as a NUL-terminated UTF-8 buffer (one per thread, reused by the
   * next call), or null when it is too long for the kernel anyway.
   */
  cPath(path: string): Uint8Array<ArrayBuffer> | null;
}

let opened: Libc | null | undefined;

/** The C library, or null where it cannot be had (not Linux, no FFI permission, no glibc). */
export function libc(): Libc | null {
  if (opened === undefined) opened = open();
  return opened;
}

function open(): Libc | null {
  if (Deno.build.os !== "linux") return null;
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
    const lib = Deno.dlopen("libc.so.6", SYMBOLS);
    const where = lib.symbols.__errno_location();
    if (where === null) return null;
    // errno is per thread; FFI calls run on the calling thread, whose errno this is.
    const errno = new Deno.UnsafePointerView(where);
    const encoder = new TextEncoder();
    const buf = new Uint8Array(4097);
    return {
      symbols: lib.symbols,
      errno: () => errno.getInt32(),
      cPath: (path) => {
        const { read, written } = encoder.encodeInto(path, buf);
        if (read < path.length || written >= buf.length - 1) return null;
        buf[written] = 0;
        return buf;
      },
    };
  } catch {
    return null; // no libc.so.6 (musl, say): the portable path
  }
}
