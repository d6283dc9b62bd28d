/**
 * Packs: many small files in one content-addressed blob (design/format.md,
 * "Packs").
 *
 * On a datastore where every request costs tens of milliseconds, a push of
 * 100,000 small files as 100,000 blobs is 100,000 requests; packed, it is a
 * few dozen. A pack is an ordinary blob, named by the SHA-256 of its bytes,
 * so every provider stores it unchanged:
 *
 * ```
 * chunk 0 | chunk 1 | … | chunk n-1 | index (JSON) | footer (16 bytes)
 * ```
 *
 * A chunk is the bytes of one piece of content, named by its own SHA-256;
 * today a chunk is a whole file (a later step may split large files into
 * content-defined chunks stored in the same packs). The index lists every
 * chunk as `[sha256, offset, length]`, so a pack describes itself (for
 * `verify --read-data` and for a `gc` that rewrites packs); the footer is
 * the magic `MSPACK\0\1` and the index length as a little-endian 64-bit
 * integer. Readers of files never need the index: a manifest entry of a
 * packed file names its pack and offset (its length is the file's size),
 * and a pull reads just those bytes where the provider offers ranged reads.
 *
 * @example
 * ```ts
 * import { PackBuilder, readPackIndex } from "./pack.ts";
 * import { hashBytes } from "./hash.ts";
 * const b = new PackBuilder();
 * const hi = new TextEncoder().encode("hi");
 * const at = b.add(hashBytes(hi), hi);
 * const pack = b.finish();
 * console.log(at, readPackIndex(pack.bytes, pack.sha256)[0].length); // 0 2
 * ```
 * @module
 */
import { CorruptError } from "../errors.ts";
import { hashBytes } from "./hash.ts";

/** Where a packed file's bytes are: `size` bytes from `offset` of blob `blob`. */
export interface PackLocation {
  /** SHA-256 of the pack blob. */
  blob: string;
  offset: number;
}

/** One chunk of a pack, as its index lists it. */
export interface PackChunk {
  sha256: string;
  offset: number;
  length: number;
}

/** A pack is closed once it holds this much (about restic's 16 MiB). */
export const PACK_TARGET_BYTES = 16 * 1024 * 1024;

/**
 * Files up to this size are packed; larger ones stay blobs of their own
 * (one request each is small next to their transfer time). Empty files stay
 * blobs too: the empty blob is one for the whole datastore.
 */
export const PACKED_FILE_MAX_BYTES = 512 * 1024;

const MAGIC = new Uint8Array([0x4d, 0x53, 0x50, 0x41, 0x43, 0x4b, 0x00, 0x01]); // MSPACK\0\1
const FOOTER_BYTES = 16;

/** True when a file of `size` bytes is packed rather than stored as a blob of its own. */
export function isPackable(size: number): boolean {
  return size > 0 && size <= PACKED_FILE_MAX_BYTES;
}

/** Collects chunks into one pack. */
export class PackBuilder {
  readonly #parts: Uint8Array[] = [];
  readonly #chunks: PackChunk[] = [];
  readonly #at = new Map<string, number>();
  #size = 0;

  /** Bytes of chunks so far. */
  get size(): number {
    return this.#size;
  }

  /** Chunks so far. */
  get count(): number {
    return this.#chunks.length;
  }

  /**
   * Adds a chunk whose content hashes to `sha256` (the caller checked it);
   * returns its offset. A chunk already in this pack is not added twice.
   */
  add(sha256: string, bytes: Uint8Array): number {
    const seen = this.#at.get(sha256);
    if (seen !== undefined) return seen;
    const offset = this.#size;
    this.#parts.push(bytes);
    this.#chunks.push({ sha256, offset, length: bytes.length });
    this.#at.set(sha256, offset);
    this.#size += bytes.length;
    return offset;
  }

  /** The pack's bytes (chunks, index, footer) and its SHA-256. */
  finish(): { bytes: Uint8Array; sha256: string; chunks: PackChunk[] } {
    const index = new TextEncoder().encode(JSON.stringify({
      format: 1,
      chunks: this.#chunks.map((c) => [c.sha256, c.offset, c.length]),
    }));
    const bytes = new Uint8Array(this.#size + index.length + FOOTER_BYTES);
    let off = 0;
    for (const p of this.#parts) {
      bytes.set(p, off);
      off += p.length;
    }
    bytes.set(index, off);
    off += index.length;
    bytes.set(MAGIC, off);
    new DataView(bytes.buffer, bytes.byteOffset + off + 8, 8).setBigUint64(
      0,
      BigInt(index.length),
      true,
    );
    return { bytes, sha256: hashBytes(bytes), chunks: [...this.#chunks] };
  }
}

/**
 * The chunks a whole pack lists, each checked to lie inside the pack's chunk
 * area. Throws {@linkcode CorruptError} (exit 6) naming the pack when the
 * footer or index is malformed.
 */
export function readPackIndex(bytes: Uint8Array, sha256: string): PackChunk[] {
  const bad = (why: string) =>
    new CorruptError(
      `Pack ${sha256} in the datastore is corrupt (${why}); refusing it. Run "modelsync verify ` +
        `--read-data" to list the models that name it, and push them again from a good copy.`,
    );
  if (bytes.length < FOOTER_BYTES) throw bad("too short for a pack footer");
  const foot = bytes.subarray(bytes.length - FOOTER_BYTES);
  for (let i = 0; i < MAGIC.length; i++) if (foot[i] !== MAGIC[i]) throw bad("no pack footer");
  const indexLength = new DataView(foot.buffer, foot.byteOffset + 8, 8).getBigUint64(0, true);
  const chunkArea = BigInt(bytes.length - FOOTER_BYTES) - indexLength;
  if (chunkArea < 0n) throw bad("its index is longer than the pack");
  const end = Number(chunkArea);
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(
      bytes.subarray(end, bytes.length - FOOTER_BYTES),
    ));
  } catch {
    throw bad("its index is not JSON");
  }
  const list = (doc as { format?: unknown; chunks?: unknown })?.chunks;
  if ((doc as { format?: unknown })?.format !== 1 || !Array.isArray(list)) {
    throw bad("its index has no format 1 chunk list");
  }
  return list.map((c) => {
    if (
      !Array.isArray(c) || c.length !== 3 || typeof c[0] !== "string" ||
      !/^[0-9a-f]{64}$/.test(c[0]) || !Number.isSafeInteger(c[1]) || !Number.isSafeInteger(c[2]) ||
      c[1] < 0 || c[2] < 0 || c[1] + c[2] > end
    ) {
      throw bad(`its index lists a chunk outside the pack: ${JSON.stringify(c).slice(0, 100)}`);
    }
    return { sha256: c[0], offset: c[1], length: c[2] };
  });
}

/** The blob that holds an entry's content: its pack, or a blob of its own. */
export function blobOf(entry: { sha256: string; pack?: PackLocation }): string {
  return entry.pack?.blob ?? entry.sha256;
}

/** One read of a pack: `length` bytes from `offset`, holding `items`. */
export interface PackSpan<T> {
  blob: string;
  offset: number;
  length: number;
  items: T[];
}

/** Bytes between two wanted parts that a span reads through rather than split in two reads. */
export const SPAN_GAP_BYTES = 256 * 1024;

/**
 * Groups wanted parts of packs into reads: parts of one pack sorted by
 * offset, neighbours closer than {@linkcode SPAN_GAP_BYTES} merged into one
 * span, no span over {@linkcode PACK_TARGET_BYTES} (unless one part is).
 */
export function packSpans<T>(
  parts: readonly T[],
  where: (part: T) => { blob: string; offset: number; length: number },
): PackSpan<T>[] {
  const byPack = new Map<string, T[]>();
  for (const p of parts) {
    const w = where(p);
    const list = byPack.get(w.blob);
    if (list === undefined) byPack.set(w.blob, [p]);
    else list.push(p);
  }
  const spans: PackSpan<T>[] = [];
  for (const [blob, list] of byPack) {
    list.sort((a, b) => where(a).offset - where(b).offset);
    let cur: PackSpan<T> | undefined;
    for (const p of list) {
      const w = where(p);
      const end = w.offset + w.length;
      if (
        cur !== undefined && w.offset - (cur.offset + cur.length) <= SPAN_GAP_BYTES &&
        Math.max(end, cur.offset + cur.length) - cur.offset <= PACK_TARGET_BYTES
      ) {
        cur.length = Math.max(end, cur.offset + cur.length) - cur.offset;
        cur.items.push(p);
        continue;
      }
      cur = { blob, offset: w.offset, length: w.length, items: [p] };
      spans.push(cur);
    }
  }
  return spans;
}
