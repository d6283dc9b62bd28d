/**
 * Reading the content of a blob to store, checked against its name: what
 * every provider's `putBlob` needs (contract rule 1: a blob becomes visible
 * only once its content hashed to its name), written once; with the check
 * of a blob's name and the error for a missing blob that every provider
 * shares.
 *
 * A file source may change while it is read (a user writing it): the
 * content is checked at the size the scan saw and a mismatch is a
 * `ContentChangedError` (exit 4: rerun once it settles). A file that
 * vanished is the same error.
 *
 * @example
 * ```ts
 * import { readCheckedSource } from "./blob_source.ts";
 * import { hashBytes } from "../model/hash.ts";
import { readFileNative } from "../model/read_native.ts";
 * const bytes = new TextEncoder().encode("hello");
 * console.log((await readCheckedSource(hashBytes(bytes), { kind: "bytes", bytes })).length); // 5
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { ContentChangedError, NotFoundError } from "../errors.ts";
import { hashBytes } from "../model/hash.ts";
import { readFileNative } from "../model/read_native.ts";
import type { BlobSource } from "./contract.ts";

/** A blob's name: its SHA-256 in lowercase hex. */
export const BLOB_HASH = /^[0-9a-f]{64}$/;

/** Throws unless `hash` is a blob's name (a programming error: hashes come from scans). */
export function checkBlobHash(hash: string): void {
  if (!BLOB_HASH.test(hash)) {
    throw new Error(`Invalid blob hash ${JSON.stringify(hash)}: expected 64 lowercase hex digits.`);
  }
}

/** The `getBlob` error for a blob missing from the datastore at `where`, with the remedy. */
export function missingBlob(hash: string, where: string): NotFoundError {
  return new NotFoundError(
    `Blob ${hash} is missing from the datastore ${where}: push the model that names it again ` +
      `from a repository that has the file.`,
  );
}

/** Sources up to this size are read with synchronous calls (an async read costs several times more). */
const SYNC_READ_BYTES = 64 * 1024;

/** Throws ContentChangedError unless `got` is `hash` and `size` the size expected (-1: any). */
export function verifyContent(
  hash: string,
  got: { sha256: string; size: number; expectSize: number; what: string },
): void {
  if (got.sha256 === hash && (got.expectSize < 0 || got.size === got.expectSize)) return;
  throw new ContentChangedError(
    `${got.what} no longer hashes to ${hash} (${got.size} bytes read), nothing was stored: it ` +
      `changed while being pushed. Rerun once it settles.`,
  );
}

/** A local file that vanished while it was to be stored. */
function vanished(path: string, err: unknown): ContentChangedError {
  return new ContentChangedError(
    `File ${path} disappeared while being pushed. Rerun once it settles.`,
    { cause: err },
  );
}

async function open(path: string, sync: boolean): Promise<Deno.FsFile> {
  try {
    return sync ? Deno.openSync(path, { read: true }) : await Deno.open(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw vanished(path, err);
    throw err;
  }
}

/** Up to `max` bytes from the file's position (fewer only at its end). */
async function readUpTo(file: Deno.FsFile, max: number, sync: boolean): Promise<Uint8Array> {
  const buf = new Uint8Array(max);
  let got = 0;
  while (got < max) {
    const n = sync ? file.readSync(buf.subarray(got)) : await file.read(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** Up to `size + 1` bytes of a file through FFI (`readFileNative`), or undefined. */
function readNativeOrVanished(path: string, size: number): Uint8Array | undefined {
  try {
    return readFileNative(path, { sizeHint: size, max: size + 1 });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw vanished(path, err);
    throw err;
  }
}

/** Up to `size + 1` bytes of a file, with Deno's calls. */
async function readWhole(path: string, size: number, sync: boolean): Promise<Uint8Array> {
  using file = await open(path, sync);
  return await readUpTo(file, size + 1, sync);
}

/**
 * The whole content of a (small) source, checked against `hash`. A file is
 * read up to one byte past the size scanned, so one that grew is refused
 * without being read whole.
 */
export async function readCheckedSource(hash: string, source: BlobSource): Promise<Uint8Array> {
  if (source.kind === "bytes") {
    const b = source.bytes;
    verifyContent(hash, {
      sha256: hashBytes(b),
      size: b.length,
      expectSize: -1,
      what: "the given bytes",
    });
    return b;
  }
  const sync = source.size <= SYNC_READ_BYTES;
  const bytes = (sync ? readNativeOrVanished(source.path, source.size) : undefined) ??
    await readWhole(source.path, source.size, sync);
  verifyContent(hash, {
    sha256: hashBytes(bytes),
    size: bytes.length,
    expectSize: source.size,
    what: source.path,
  });
  source.onRead?.(bytes.length);
  return bytes;
}

/**
 * A file's content in chunks of `chunkBytes`, hashed as read; the last
 * chunk is held back until the whole content hashed to `hash` at the size
 * scanned, and a ContentChangedError thrown instead of it otherwise (a file
 * that grew stops at once), so a consumer never stores all of a changed
 * file. `onRead` is called as each chunk is taken.
 */
export async function* checkedChunks(
  hash: string,
  source: { path: string; size: number; onRead?: (bytes: number) => void },
  chunkBytes: number,
): AsyncGenerator<Uint8Array> {
  using file = await open(source.path, false);
  const h = createHash("sha256");
  let held: Uint8Array | undefined;
  let total = 0;
  for (let chunk; (chunk = await readUpTo(file, chunkBytes, false)).length > 0;) {
    total += chunk.length;
    if (total > source.size) break;
    h.update(chunk);
    if (held !== undefined) {
      yield held;
      source.onRead?.(held.byteLength);
    }
    held = chunk;
  }
  verifyContent(hash, {
    sha256: total > source.size ? "" : h.digest("hex"),
    size: total,
    expectSize: source.size,
    what: source.path,
  });
  if (held !== undefined) {
    yield held;
    source.onRead?.(held.byteLength);
  }
}

/** `bytes` as a stream of one chunk (none when empty): content already in memory. */
export function oneChunkStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(ctrl) {
      if (bytes.length > 0) ctrl.enqueue(bytes);
      ctrl.close();
    },
  });
}
