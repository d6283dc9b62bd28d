/**
 * SHA-256 of files and bytes, as lowercase hex: the address of a blob.
 *
 * @example
 * ```ts
 * import { hashBytes } from "./hash.ts";
 * console.log(hashBytes(new TextEncoder().encode("abc")).slice(0, 8)); // ba7816bf
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { readFileNative } from "./read_native.ts";

/** Files up to this size are read in one go; larger ones are streamed. */
export const SMALL_FILE_BYTES = 4 * 1024 * 1024;
const CHUNK = 1024 * 1024;

/**
 * Hashes a small file with synchronous reads. For tiny files this is about
 * twice as fast as any async path in Deno; keep it for files of a few tens
 * of KiB, since it blocks the event loop while it reads. `sizeHint` is the
 * size `lstat` just reported (see {@linkcode readSmallFileSync}).
 */
export function hashSmallFileSync(
  path: string,
  sizeHint?: number,
): { sha256: string; size: number } {
  const bytes = readSmallFileSync(path, sizeHint);
  return { sha256: hashBytes(bytes), size: bytes.length };
}

/**
 * Reads a whole file synchronously in four system calls (open, read, read
 * to see the end, close) when `sizeHint` is right, where `Deno.readFileSync`
 * also stats and seeks: per file of a large tree that adds up (through FFI
 * where it can: `./read_native.ts`). A file that grew or shrank since the
 * hint is still read whole, up to its end.
 *
 * @example
 * ```ts
 * import { readSmallFileSync } from "./hash.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "abc");
 * console.log(readSmallFileSync(path, 3).length); // 3
 * await Deno.remove(path);
 * ```
 */
export function readSmallFileSync(path: string, sizeHint?: number): Uint8Array {
  if (sizeHint === undefined) return Deno.readFileSync(path);
  const fast = readFileNative(path, { sizeHint });
  if (fast !== undefined) return fast;
  using file = Deno.openSync(path, { read: true });
  return readToEndSync(file, sizeHint);
}

/**
 * Reads an open file from where it stands to its end, with synchronous
 * reads: one of exactly `sizeHint + 1` bytes and one that finds the end when
 * the hint is right, more when the file grew.
 */
export function readToEndSync(file: Deno.FsFile, sizeHint: number): Uint8Array {
  let buf = new Uint8Array(sizeHint + 1);
  let size = 0;
  for (;;) {
    if (size === buf.length) {
      const bigger = new Uint8Array(buf.length * 2);
      bigger.set(buf);
      buf = bigger;
    }
    const n = file.readSync(buf.subarray(size));
    if (n === null) return buf.subarray(0, size);
    size += n;
  }
}

/**
 * Buffers up to this size are hashed in JavaScript (`@noble/hashes`):
 * each `node:crypto` hash object holds native memory until a major garbage
 * collection, which over 100,000 small files came to tens of megabytes per
 * thread. Larger buffers are few per megabyte and hash faster natively.
 */
export const JS_HASH_MAX_BYTES = 4 * 1024;

/** SHA-256 of `bytes` as 64 lowercase hex digits. */
export function hashBytes(bytes: Uint8Array): string {
  if (native === undefined) native = loadNativeSha256();
  if (native !== null) return bytesToHex(native(bytes));
  if (bytes.length <= JS_HASH_MAX_BYTES) return bytesToHex(sha256(bytes));
  return createHash("sha256").update(bytes).digest("hex");
}

/** A one-shot SHA-256 of the C library OpenSSL, through Deno's FFI. */
type NativeSha256 = (bytes: Uint8Array) => Uint8Array;
let native: NativeSha256 | null | undefined;

/**
 * OpenSSL's one-shot `SHA256()` from `libcrypto`, when FFI is already
 * permitted and the library is there; else null (the portable path above).
 * Measured on this project's 2-core machine for 100,000 buffers of 1 KiB:
 * 74 ms, against 419 ms for `@noble/hashes` and 144 ms for `node:crypto`
 * (a hash object per buffer, whose native memory waits for a major garbage
 * collection). A scan and a pack build hash every small file, so on a first
 * push of 100,000 files this is most of the hashing time. No state is kept
 * between calls: each call hashes one buffer into a fresh 32-byte digest.
 */
function loadNativeSha256(): NativeSha256 | null {
  try {
    // Only when already allowed: asking would prompt on a terminal.
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
    const symbols = {
      SHA256: { parameters: ["buffer", "usize", "buffer"], result: "pointer" },
    } as const;
    let lib: Deno.DynamicLibrary<typeof symbols> | undefined;
    for (const name of ["libcrypto.so.3", "libcrypto.so", "libcrypto.3.dylib"]) {
      try {
        lib = Deno.dlopen(name, symbols);
        break;
      } catch {
        // The next name, else the portable path.
      }
    }
    if (lib === undefined) return null;
    const { SHA256 } = lib.symbols;
    const hash: NativeSha256 = (bytes) => {
      const md = new Uint8Array(32);
      SHA256(bytes as Uint8Array<ArrayBuffer>, BigInt(bytes.length), md);
      return md;
    };
    // Checked once against the portable one, on the empty input and one that is not.
    const probe = new TextEncoder().encode("abc");
    for (const b of [new Uint8Array(0), probe]) {
      if (bytesToHex(hash(b)) !== bytesToHex(sha256(b))) return null;
    }
    return hash;
  } catch {
    return null;
  }
}

/**
 * Hashes a file's content. The size returned is the number of bytes actually
 * read, so it always matches the hash even when the file changes meanwhile.
 * Honours `signal` between chunks. `sizeHint` (the size a caller just saw
 * with `lstat`) lets a small file be read in a single operation.
 *
 * @example
 * ```ts
 * import { hashFile } from "./hash.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "abc");
 * const { sha256, size } = await hashFile(path);
 * console.log(size, sha256.slice(0, 8)); // 3 ba7816bf
 * await Deno.remove(path);
 * ```
 */
export async function hashFile(
  path: string,
  opts: { signal?: AbortSignal; sizeHint?: number } = {},
): Promise<{ sha256: string; size: number }> {
  opts.signal?.throwIfAborted();
  if (opts.sizeHint !== undefined && opts.sizeHint <= SMALL_FILE_BYTES) {
    // One operation for the common small file; the scanner knows its size.
    const bytes = await Deno.readFile(path, { signal: opts.signal });
    if (bytes.length <= SMALL_FILE_BYTES) return { sha256: hashBytes(bytes), size: bytes.length };
    // It grew past the limit meanwhile: fall through and stream it.
  }
  const file = await Deno.open(path, { read: true });
  try {
    const { size: statSize } = await file.stat();
    // Small files: one buffer holds it all (+1 so the next read sees the end).
    const buf = new Uint8Array(statSize < SMALL_FILE_BYTES ? statSize + 1 : CHUNK);
    const hash = createHash("sha256");
    let size = 0;
    for (;;) {
      const n = await file.read(buf);
      if (n === null) break;
      hash.update(buf.subarray(0, n));
      size += n;
      opts.signal?.throwIfAborted();
    }
    return { sha256: hash.digest("hex"), size };
  } finally {
    file.close();
  }
}
