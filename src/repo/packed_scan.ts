/**
 * A compact form of a {@linkcode ScanResult}: one string of paths and typed
 * arrays instead of one object and two strings per file. Scan workers post
 * it (a structured clone of 100,000 file records costs tens of megabytes on
 * the receiving heap; typed arrays are transferred without a copy), and a
 * push keeps each changed model in this form until it is that model's turn,
 * so the whole tree's file records are never on the heap at once.
 *
 * @example
 * ```ts
 * import { packScan, unpackScan } from "./packed_scan.ts";
 * import { scanModel } from "./scan.ts";
 * const repo = await Deno.makeTempDir();
 * await Deno.mkdir(`${repo}/models/vpc/m1`, { recursive: true });
 * await Deno.writeTextFile(`${repo}/models/vpc/m1/a.txt`, "hi");
 * const scan = await scanModel(repo, { type: "vpc", id: "m1" }, {
 *   dataDir: "models", exclude: [], base: null,
 * });
 * console.log(unpackScan(packScan(scan)).changes.added); // ["a.txt"]
 * await Deno.remove(repo, { recursive: true });
 * ```
 * @module
 */
import type { ModelRef } from "../model/ref.ts";
import type { LocalFile, ScanResult, Unsyncable } from "./scan.ts";

/** A {@linkcode ScanResult} with its files packed (see the module doc). */
export interface PackedScan {
  packed: true;
  model: ModelRef;
  dir: string;
  exists: boolean;
  skipped: string[];
  unsyncable: Unsyncable[];
  hashed: number;
  startedAtMs: number;
  /** Every file's path, in `files` order, each followed by NUL (which no path contains). */
  paths: string;
  /** 32 bytes of SHA-256 per file. */
  sha256: Uint8Array;
  size: Float64Array;
  mtimeMs: Float64Array;
  /** 1: executable. */
  executable: Uint8Array;
  /** The files that are symbolic links (few): index into the files, and target. */
  links: [number, string][];
  /** Indexes into the files of the added and the modified paths, each in sorted path order. */
  added: Uint32Array;
  modified: Uint32Array;
  /** Base paths with no file (not among the files, so kept as strings), sorted. */
  deleted: string[];
}

/** True when a scan, packed or not, lists anything added, modified or deleted. */
export function hasPackedChanges(scan: ScanResult | PackedScan): boolean {
  if ("packed" in scan) return scan.added.length + scan.modified.length + scan.deleted.length > 0;
  return scan.changes.added.length + scan.changes.modified.length + scan.changes.deleted.length > 0;
}

/** The typed arrays of a packed scan, to transfer them to another thread without a copy. */
export function packedBuffers(p: PackedScan): ArrayBuffer[] {
  return [p.sha256, p.size, p.mtimeMs, p.executable, p.added, p.modified].map((a) =>
    a.buffer as ArrayBuffer
  );
}

/** Packs a scan. Every file's sha256 must be 64 lowercase hex digits, as the scan makes them. */
export function packScan(scan: ScanResult): PackedScan {
  const n = scan.files.size;
  const sha256 = new Uint8Array(32 * n);
  const size = new Float64Array(n);
  const mtimeMs = new Float64Array(n);
  const executable = new Uint8Array(n);
  const index = new Map<string, number>();
  const paths: string[] = [];
  const links: [number, string][] = [];
  let i = 0;
  for (const f of scan.files.values()) {
    index.set(f.path, i);
    paths.push(f.path);
    hexInto(f.sha256, sha256, 32 * i);
    size[i] = f.size;
    mtimeMs[i] = f.mtimeMs;
    executable[i] = f.executable ? 1 : 0;
    if (f.link !== undefined) links.push([i, f.link]);
    i++;
  }
  const indexes = (list: string[]) => Uint32Array.from(list, (p) => index.get(p)!);
  return {
    packed: true,
    model: scan.model,
    dir: scan.dir,
    exists: scan.exists,
    skipped: scan.skipped,
    unsyncable: scan.unsyncable,
    hashed: scan.hashed,
    startedAtMs: scan.startedAtMs,
    paths: paths.length === 0 ? "" : paths.join("\0") + "\0",
    sha256,
    size,
    mtimeMs,
    executable,
    links,
    added: indexes(scan.changes.added),
    modified: indexes(scan.changes.modified),
    deleted: scan.changes.deleted,
  };
}

/** The scan a packed scan was made from (a plain scan is returned as it is). */
export function unpackScan(p: ScanResult | PackedScan): ScanResult {
  if (!("packed" in p)) return p;
  const files = new Map<string, LocalFile>();
  const names: string[] = [];
  const links = new Map(p.links);
  let start = 0;
  for (let i = 0; start < p.paths.length; i++) {
    const end = p.paths.indexOf("\0", start);
    const path = p.paths.slice(start, end);
    start = end + 1;
    names.push(path);
    const file: LocalFile = {
      path,
      size: p.size[i],
      mtimeMs: p.mtimeMs[i],
      executable: p.executable[i] === 1,
      sha256: hexOf(p.sha256, 32 * i),
    };
    const link = links.get(i);
    if (link !== undefined) file.link = link;
    files.set(path, file);
  }
  return {
    model: p.model,
    dir: p.dir,
    exists: p.exists,
    files,
    changes: {
      added: Array.from(p.added, (i) => names[i]),
      modified: Array.from(p.modified, (i) => names[i]),
      deleted: p.deleted,
    },
    skipped: p.skipped,
    unsyncable: p.unsyncable,
    hashed: p.hashed,
    startedAtMs: p.startedAtMs,
  };
}

function hexInto(hex: string, out: Uint8Array, off: number): void {
  if (hex.length !== 64) throw new Error(`Not a SHA-256: ${JSON.stringify(hex)}`);
  for (let i = 0; i < 32; i++) {
    const hi = nibble(hex.charCodeAt(2 * i));
    const lo = nibble(hex.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) throw new Error(`Not a SHA-256: ${JSON.stringify(hex)}`);
    out[off + i] = (hi << 4) | lo;
  }
}

function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

const DIGITS = "0123456789abcdef";
const CODES: number[] = new Array(64).fill(0);

function hexOf(bytes: Uint8Array, off: number): string {
  for (let i = 0; i < 32; i++) {
    const b = bytes[off + i];
    CODES[2 * i] = DIGITS.charCodeAt(b >> 4);
    CODES[2 * i + 1] = DIGITS.charCodeAt(b & 15);
  }
  return String.fromCharCode.apply(null, CODES);
}
