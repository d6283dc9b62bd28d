/**
 * Synthetic trees for the benchmark: model repositories with many small
 * files of distinct content, big files of random bytes, and in-place edits
 * that give every file a new content hash without rewriting it.
 *
 * @example
 * ```ts
 * import { writeModels } from "./_tree.ts";
 * const n = await writeModels("/tmp/repo/models", { models: 10, files: 100, size: 1024 });
 * console.log(n); // 1000
 * ```
 * @module
 */
import { dirname, join } from "node:path";

/** Bytes from a fast seeded generator (xorshift32); not for cryptography. */
export function seededBytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  const words = new Uint32Array(out.buffer, 0, Math.floor(size / 4));
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  for (let i = words.length * 4; i < size; i++) out[i] = i & 0xff;
  return out;
}

/** The model ref of model number `i` of a tree: `bench/m0000`, `bench/m0001`, ... */
export function modelName(i: number, type = "bench"): string {
  return `${type}/m${String(i).padStart(4, "0")}`;
}

/** Shape of a synthetic tree. */
export interface TreeShape {
  models: number;
  /** Files per model. */
  files: number;
  /** Bytes per file. */
  size: number;
  /** Model type (first path segment); default "bench". */
  type?: string;
  /** Seed, so two trees can differ; default 1. */
  seed?: number;
}

/**
 * Writes `models × files` files of `size` bytes under `dataDir/TYPE/ID/`, in
 * two sub-folders per model, each file's content distinct (its index is
 * stamped into a shared random pool). Returns the number of files.
 */
export async function writeModels(dataDir: string, shape: TreeShape): Promise<number> {
  const pool = seededBytes(Math.max(shape.size * 4, 65_536), shape.seed ?? 1);
  const stamp = new TextEncoder();
  let n = 0;
  for (let m = 0; m < shape.models; m++) {
    const dir = join(dataDir, modelName(m, shape.type));
    await Deno.mkdir(join(dir, "a"), { recursive: true });
    await Deno.mkdir(join(dir, "b"), { recursive: true });
    for (let f = 0; f < shape.files; f++) {
      const off = (n * 37) % (pool.length - shape.size);
      const bytes = pool.slice(off, off + shape.size);
      bytes.set(stamp.encode(`${shape.seed ?? 1}:${n}:`).subarray(0, shape.size));
      const sub = f % 2 === 0 ? "a" : "b";
      Deno.writeFileSync(join(dir, sub, `f${String(f).padStart(4, "0")}.bin`), bytes);
      n++;
    }
  }
  return n;
}

/** Writes `count` files of `size` random bytes (e.g. one 100 MB model) under `dir`. */
export async function writeBigFiles(
  dir: string,
  opts: { count: number; size: number; seed: number },
): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const paths: string[] = [];
  for (let i = 0; i < opts.count; i++) {
    const p = join(dir, `shard-${String(i).padStart(3, "0")}.bin`);
    await Deno.writeFile(p, seededBytes(opts.size, opts.seed * 1000 + i + 1));
    paths.push(p);
  }
  return paths;
}

/**
 * Writes one file of `size` random bytes in chunks of 64 MiB (so a 2 GiB
 * file never sits in memory whole); `seed` makes its content.
 */
export async function writeLargeFile(path: string, size: number, seed: number): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const chunk = 64 * 2 ** 20;
  for (let off = 0, i = 0; off < size; off += chunk, i++) {
    const bytes = seededBytes(Math.min(chunk, size - off), seed * 100_003 + i + 1);
    for (let n = 0; n < bytes.length;) n += await file.write(bytes.subarray(n));
  }
}

/**
 * Gives every file a new content hash by overwriting its first 16 bytes in
 * place with `tag` (the rest is kept, so a 4 MiB file costs one small write).
 */
export async function stampFiles(paths: string[], tag: string): Promise<void> {
  const bytes = new TextEncoder().encode(tag.padEnd(16, ".").slice(0, 16));
  for (const p of paths) {
    const f = await Deno.open(p, { write: true });
    try {
      await f.write(bytes);
    } finally {
      f.close();
    }
  }
}

/** Every file under `dir`, recursively (absolute paths). */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await listFiles(p));
    else if (e.isFile) out.push(p);
  }
  return out;
}

/** Writes one text file, creating its parents. */
export async function writeText(path: string, text: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  await Deno.writeTextFile(path, text);
}
