/**
 * Manifest storage of the filesystem provider:
 * `manifests/TYPE/ID/GGGGGGGGGGGG.json`, one immutable file per generation.
 * A commit hard-links a complete temp file to the next generation's name;
 * the link is create-exclusive, so it is a compare-and-swap without a lock.
 * Generation files are never deleted, which keeps the scheme free of ABA.
 * The version token names the generation *file* (number, inode, mtime,
 * size), so a generation removed by hand and committed again by another
 * writer reads as a new version.
 *
 * @module
 */
import { join } from "node:path";
import { ConflictError, CorruptError } from "../../errors.ts";
import { assertCommitArgs, type Manifest, parseManifestText } from "../../model/manifest.ts";
import { formatRef, isValidId, isValidName, type ModelRef, refProblem } from "../../model/ref.ts";
import type { ManifestListing, StoredManifest } from "../../provider/contract.ts";
import {
  fsFail,
  isNotFound,
  linkExclusive,
  mapLimit,
  readDirOrEmpty,
  removeQuietly,
  type TempFiles,
} from "./_fs.ts";

const GENERATION_FILE = /^(\d{12})\.json$/;
/** Models whose newest generation is looked up at once by `list`. */
const LIST_PARALLELISM = 32;
/** Re-reads of a model directory when its newest file vanished (removed by hand). */
const VANISHED_RETRIES = 3;
const READ_CHUNK = 64 * 1024;

/**
 * The version token of one generation file. It identifies the file, not only
 * its number: a generation file removed (a restore from backup) and linked
 * again by another writer has another inode or mtime, so repositories that
 * synced the old file do not take the new one for the version they have.
 * `link` and `unlink` change neither field, so the token of a commit's temp
 * file equals that of the generation file it became. Opaque to callers.
 */
export function versionToken(generation: number, info: Deno.FileInfo): string {
  const ino = info.ino ?? "-";
  const mtime = info.mtime?.getTime() ?? "-";
  return `${generation}.${ino}.${mtime}.${info.size}`;
}

/** The file name of one generation: 12 digits, zero-padded. */
export function generationFile(generation: number): string {
  return `${String(generation).padStart(12, "0")}.json`;
}

/** Throws for a ref that could not have been parsed (it would make a bad path). */
export function checkRef(model: ModelRef): void {
  const problem = refProblem(formatRef(model));
  if (problem !== undefined) {
    throw new Error(`Invalid model ref ${JSON.stringify(formatRef(model))}: ${problem}.`);
  }
}

/** The manifests area of one datastore (or of a probe directory). */
export class ManifestStore {
  readonly #dir: string;
  readonly #temps: TempFiles;
  /**
   * `list` reads with synchronous calls: set when the store is on a local
   * disk (`isLocalDisk`), never on a network mount, where a hung server would
   * block a synchronous call past every deadline.
   */
  syncReads = false;

  constructor(dir: string, temps: TempFiles) {
    this.#dir = dir;
    this.#temps = temps;
  }

  /** Directory holding the generations of one model. */
  modelDir(model: ModelRef): string {
    checkRef(model);
    return join(this.#dir, ...model.type.split("/"), model.id);
  }

  /** The highest generation present in a model directory (0 when none). */
  async highest(model: ModelRef, signal?: AbortSignal): Promise<number> {
    return highestIn(await readDirOrEmpty(this.modelDir(model), signal));
  }

  /** The current manifest of a model, or null. */
  get(model: ModelRef, signal?: AbortSignal): Promise<StoredManifest | null> {
    return this.#atNewest(model, signal, async (path, generation) => {
      // The token comes from the open file itself, so it names the bytes parsed
      // even if the directory changes meanwhile.
      const read = await readWithInfo(path, signal);
      return {
        manifest: parseAt(model, path, generation, read.text),
        version: versionToken(generation, read.info),
      };
    });
  }

  /** The version token of a model's newest generation file, or null when it has none. */
  #current(model: ModelRef, signal?: AbortSignal): Promise<string | null> {
    // stat, not lstat: like the read in `get`, it names the file a link leads to.
    return this.#atNewest(
      model,
      signal,
      async (path, generation) => versionToken(generation, await Deno.stat(path)),
    );
  }

  /**
   * {@linkcode ManifestStore.#current} with synchronous calls: on a local disk
   * a readdir and a stat take microseconds, a fraction of an async call's cost
   * in Deno, and `list` makes two per model.
   */
  #currentSync(model: ModelRef): string | null {
    const dir = this.modelDir(model);
    for (let attempt = 0;; attempt++) {
      let generation: number;
      try {
        generation = highestIn([...Deno.readDirSync(dir)]);
      } catch (err) {
        if (isNotFound(err)) return null;
        throw fsFail(err, "list directory", dir);
      }
      if (generation === 0) return null;
      const path = join(dir, generationFile(generation));
      try {
        return versionToken(generation, Deno.statSync(path));
      } catch (err) {
        if (isNotFound(err) && attempt < VANISHED_RETRIES) continue;
        throw fsFail(err, "read manifest", path);
      }
    }
  }

  /**
   * Runs `fn` on the newest generation file of a model (null when it has
   * none); when that file vanishes under us (a reader racing a rewrite by
   * hand), the directory is read again, a few times.
   */
  async #atNewest<T>(
    model: ModelRef,
    signal: AbortSignal | undefined,
    fn: (path: string, generation: number) => Promise<T>,
  ): Promise<T | null> {
    const dir = this.modelDir(model);
    for (let attempt = 0;; attempt++) {
      const generation = highestIn(await readDirOrEmpty(dir, signal));
      if (generation === 0) return null;
      signal?.throwIfAborted();
      const path = join(dir, generationFile(generation));
      try {
        return await fn(path, generation);
      } catch (err) {
        if (isNotFound(err) && attempt < VANISHED_RETRIES) continue;
        throw fsFail(err, "read manifest", path);
      }
    }
  }

  /**
   * Every model with at least one generation, with its version: one readdir
   * and one stat of the newest generation file per model, no bodies.
   */
  async list(signal?: AbortSignal): Promise<ManifestListing[]> {
    const types: string[] = [];
    for (const e of await readDirOrEmpty(this.#dir, signal)) {
      if (!e.isDirectory) continue;
      if (e.name.startsWith("@")) {
        if (!isValidName(e.name.slice(1))) continue;
        for (const n of await readDirOrEmpty(join(this.#dir, e.name), signal)) {
          if (n.isDirectory && isValidName(n.name)) types.push(`${e.name}/${n.name}`);
        }
      } else if (isValidName(e.name)) {
        types.push(e.name);
      }
    }
    const models: ModelRef[] = [];
    for (const type of types) {
      for (const e of await readDirOrEmpty(join(this.#dir, ...type.split("/")), signal)) {
        if (e.isDirectory && isValidId(e.name)) models.push({ type, id: e.name });
      }
    }
    const versions = this.syncReads
      ? models.map((m, i) => {
        if (i % 256 === 0) signal?.throwIfAborted();
        return this.#currentSync(m);
      })
      : await mapLimit(models, LIST_PARALLELISM, (m) => this.#current(m, signal));
    const out: ManifestListing[] = [];
    models.forEach((model, i) => {
      const version = versions[i];
      if (version !== null) out.push({ model, version });
    });
    return out;
  }

  /** Commits generation `expected + 1` by create-exclusive link. */
  async commit(
    model: ModelRef,
    expected: number,
    manifest: Manifest,
    signal?: AbortSignal,
  ): Promise<{ version: string }> {
    const key = formatRef(model);
    assertCommitArgs(model, expected, manifest);
    const dir = this.modelDir(model);
    // The pre-check makes "expected is current" exact: nobody can create
    // expected+2 before expected+1 exists, and expected+1 is our link target.
    const before = await this.highest(model, signal);
    if (before !== expected) throw conflict(key, expected, before);
    signal?.throwIfAborted();
    await this.#temps.ensure();
    const tmp = await this.#temps.write(
      new TextEncoder().encode(JSON.stringify(manifest, null, 1) + "\n"),
      signal,
      "m",
    );
    try {
      signal?.throwIfAborted();
      const won = await linkExclusive(tmp, join(dir, generationFile(expected + 1)));
      if (!won) throw conflict(key, expected, await this.highest(model));
      // The temp file is now the generation file (same inode, mtime and size);
      // asking it rather than the target names exactly the file we wrote.
      try {
        return { version: versionToken(expected + 1, await Deno.lstat(tmp)) };
      } catch {
        // The commit happened, so never report it as failed. A token that no
        // listing produces only costs the next pull its zero-diff shortcut.
        return { version: `${expected + 1}.unknown` };
      }
    } finally {
      await removeQuietly(tmp);
    }
  }
}

/** Reads a whole file through one handle and returns its text with that handle's stat. */
async function readWithInfo(
  path: string,
  signal?: AbortSignal,
): Promise<{ text: string; info: Deno.FileInfo }> {
  using file = await Deno.open(path, { read: true });
  const info = await file.stat();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    signal?.throwIfAborted();
    const buf = new Uint8Array(READ_CHUNK);
    const n = await file.read(buf);
    if (n === null) break;
    chunks.push(buf.subarray(0, n));
    total += n;
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  // Keep a BOM like Deno.readTextFile does: JSON.parse refuses it.
  return { text: new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes), info };
}

/** Parses and validates the body of generation file `path`. */
function parseAt(model: ModelRef, path: string, generation: number, text: string): Manifest {
  const manifest = parseManifestText(text, model, path);
  if (manifest.generation !== generation) {
    throw new CorruptError(
      `Manifest file ${path} holds generation ${manifest.generation}, not ${generation}; ` +
        `refusing it as corrupt. Repair or re-push the model from a good copy.`,
    );
  }
  return manifest;
}

function highestIn(entries: Deno.DirEntry[]): number {
  let max = 0;
  for (const e of entries) {
    const m = GENERATION_FILE.exec(e.name);
    if (m !== null && !e.isDirectory) {
      const g = Number(m[1]);
      if (g > max) max = g;
    }
  }
  return max;
}

function conflict(key: string, expected: number, current: number): ConflictError {
  return new ConflictError(
    `Cannot commit ${key} generation ${expected + 1}: the datastore is at generation ` +
      `${current} (expected ${expected}). Run "modelsync pull" and retry.`,
    { current },
  );
}
