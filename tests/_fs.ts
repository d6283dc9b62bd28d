/**
 * Filesystem helpers for the end-to-end tests: hashing, deterministic test
 * data, tree listings and snapshots, and direct reads of a filesystem
 * datastore's layout (SPEC §3) to check what the CLI stored.
 *
 * @example
 * ```ts
 * import { Datastore } from "./_fs.ts";
 * const ds = new Datastore("/tmp/some-datastore");
 * console.log(await ds.integrityProblems()); // [] when every manifest names stored blobs
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import { join, relative } from "node:path";

/** Hex SHA-256 of some bytes or text. */
export function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Deterministic pseudo-random bytes (xorshift), so sizes and contents are reproducible. */
export function pseudoRandomBytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** True when `path` exists (without following a final symlink). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/**
 * Visits every entry under `dir` depth-first (a missing `dir` has none),
 * with its absolute path and its path relative to `dir`.
 */
async function walkTree(
  dir: string,
  visit: (e: Deno.DirEntry, abs: string, rel: string) => Promise<void> | void,
): Promise<void> {
  async function walk(d: string): Promise<void> {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(d));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    for (const e of entries) {
      const abs = join(d, e.name);
      await visit(e, abs, relative(dir, abs).split("\\").join("/"));
      if (e.isDirectory && !e.isSymlink) await walk(abs);
    }
  }
  await walk(dir);
}

/** Every file under `dir` (relative, `/`-separated, sorted); [] when it is missing. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  await walkTree(dir, (e, _abs, rel) => {
    if (!e.isDirectory) out.push(rel);
  });
  return out.sort();
}

/**
 * A snapshot of a directory tree: relative path → description (`dir`,
 * `link -> target`, or `file <mode> <sha256>`). Compare two with deepEqual.
 */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  await walkTree(dir, async (e, abs, rel) => {
    if (e.isSymlink) out[rel] = `link -> ${await Deno.readLink(abs)}`;
    else if (e.isDirectory) out[rel] = "dir";
    else {
      const st = await Deno.stat(abs);
      out[rel] = `file ${((st.mode ?? 0) & 0o777).toString(8)} ${sha256(await Deno.readFile(abs))}`;
    }
  });
  return out;
}

/** A manifest (a commit) as stored in the filesystem datastore. */
export interface StoredManifest {
  format: number;
  model: string;
  generation: number;
  commit: string;
  parent: { generation: number; commit: string } | null;
  files: {
    path: string;
    sha256: string;
    size: number;
    executable: boolean;
    link?: string;
    pack?: { blob: string; offset: number };
  }[];
  committedBy: { holder: string; host: string; pid: number };
  committedAt: string;
}

/**
 * The current bytes of a record directory of the filesystem datastore (the
 * highest numbered version `NNNNNNNNNNNN.json`; an empty one means deleted),
 * or null.
 */
export async function readRecordDir(dir: string): Promise<string | null> {
  let names: string[];
  try {
    names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name)
      .filter((n) => /^\d{12}\.json$/.test(n)).sort();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return null;
    }
    throw err;
  }
  if (names.length === 0) return null;
  try {
    const text = await Deno.readTextFile(join(dir, names[names.length - 1]));
    return text === "" ? null : text;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return readRecordDir(dir); // replaced meanwhile
    throw err;
  }
}

/**
 * Writes `text` as the next version of a record directory, as the provider
 * would (for tests that plant or tamper with records).
 */
export async function writeRecordDir(dir: string, text: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  // Written whole beside, then linked to the next number (create-exclusive), as the provider does.
  const tmp = join(dir, `.test-${crypto.randomUUID()}.tmp`);
  await Deno.writeTextFile(tmp, text);
  try {
    for (;;) {
      const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name)
        .filter((n) => /^\d{12}\.json$/.test(n)).sort();
      const next = names.length === 0 ? 1 : Number(names[names.length - 1].slice(0, 12)) + 1;
      try {
        await Deno.link(tmp, join(dir, `${String(next).padStart(12, "0")}.json`));
        return;
      } catch (err) {
        if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      }
    }
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

/** Direct access to a filesystem datastore's layout (design/format.md), for checks. */
export class Datastore {
  constructor(readonly dir: string) {}

  /** Path of the blob with this hash: `blobs/AB/SHA256`. */
  blobPath(hash: string): string {
    return join(this.dir, "blobs", hash.slice(0, 2), hash);
  }

  /** Hashes of every stored blob (files under blobs/, temporaries excluded). */
  async blobs(): Promise<string[]> {
    return (await listFiles(join(this.dir, "blobs")))
      .map((p) => p.split("/").pop()!)
      .filter((name) => /^[0-9a-f]{64}$/.test(name));
  }

  /** The directory of a model's head record. */
  headDir(model: string): string {
    return join(this.dir, "heads", model);
  }

  /** Every history record (one per commit), parsed, with its model ref and key. */
  async manifests(): Promise<{ model: string; file: string; manifest: StoredManifest }[]> {
    const root = join(this.dir, "history");
    const out: { model: string; file: string; manifest: StoredManifest }[] = [];
    const dirs = new Set<string>();
    for (const rel of await listFiles(root)) {
      const m = /^(.*)\/(\d{12}-[0-9a-f]+)\/\d{12}\.json$/.exec(rel);
      if (m) dirs.add(`${m[1]}/${m[2]}`);
    }
    for (const d of [...dirs].sort()) {
      const text = await readRecordDir(join(root, d));
      if (text === null) continue;
      out.push({
        model: d.slice(0, d.lastIndexOf("/")),
        file: `history/${d}`,
        manifest: JSON.parse(text) as StoredManifest,
      });
    }
    return out;
  }

  /** The current manifest of a model (its head), or null. */
  async current(model: string): Promise<StoredManifest | null> {
    const text = await readRecordDir(this.headDir(model));
    return text === null ? null : JSON.parse(text) as StoredManifest;
  }

  /** Replaces a model's head with `manifest` (as a restored backup would). */
  async setHead(model: string, manifest: StoredManifest): Promise<void> {
    await writeRecordDir(this.headDir(model), JSON.stringify(manifest));
  }

  /** Directory of a lock record: `leases/global` or `leases/models/TYPE/ID`. */
  lockPath(key: string): string {
    return key === "global"
      ? join(this.dir, "leases", "global")
      : join(this.dir, "leases", "models", key);
  }

  /** The parsed lock record of a key, or null when it is free. */
  async lock(key: string): Promise<Record<string, unknown> | null> {
    try {
      const text = await readRecordDir(this.lockPath(key));
      return text === null ? null : JSON.parse(text);
    } catch {
      return null;
    }
  }

  /** Plants a lock record as another process would have written it. */
  async plantLock(key: string, record: Record<string, unknown>): Promise<void> {
    await writeRecordDir(this.lockPath(key), JSON.stringify(record));
  }

  /**
   * Checks invariant 1: every head and history record names only blobs that
   * exist, and every stored blob's content hashes to its name. Returns the
   * problems found.
   */
  async integrityProblems(): Promise<string[]> {
    const problems: string[] = [];
    for (const { file, manifest } of await this.manifests()) {
      for (const f of manifest.files) {
        if (f.link !== undefined) continue; // a link's target is inline: no blob
        const pack = f.pack;
        if (pack !== undefined && (await exists(this.blobPath(pack.blob)))) {
          // A packed file: its part of the pack must hold its content.
          const bytes = await Deno.readFile(this.blobPath(pack.blob));
          const part = bytes.subarray(pack.offset, pack.offset + f.size);
          if (part.length !== f.size || sha256(part) !== f.sha256) {
            problems.push(`${file} names ${f.path} in pack ${pack.blob}, which does not hold it`);
          }
          continue;
        }
        // A file's own blob; also where a packed file's content is when its pack is gone.
        const p = this.blobPath(f.sha256);
        if (!(await exists(p))) {
          problems.push(`${file} names ${f.path} = blob ${f.sha256}, which is missing`);
          continue;
        }
        const st = await Deno.stat(p);
        if (st.size !== f.size) {
          problems.push(`${file}: blob of ${f.path} has ${st.size} bytes, manifest says ${f.size}`);
        }
      }
    }
    for (const hash of await this.blobs()) {
      const actual = sha256(await Deno.readFile(this.blobPath(hash)));
      if (actual !== hash) problems.push(`blob ${hash} holds content hashing to ${actual}`);
    }
    return problems;
  }
}
