/**
 * The base: what this repository last synced for a model, kept in
 * `.modelsync/base/TYPE/ID.json` and written atomically (tmp + rename).
 * Local changes and remote changes are both measured against it.
 *
 * @example
 * ```ts
 * import { readBase, writeBase } from "./base.ts";
 * const repo = await Deno.makeTempDir();
 * const model = { type: "vpc", id: "m1" };
 * await writeBase(repo, model, {
 *   format: 1, model: "vpc/m1", generation: 1, version: "1", files: [], syncedAtMs: Date.now(),
 * });
 * console.log((await readBase(repo, model))?.generation); // 1
 * await Deno.remove(repo, { recursive: true });
 * ```
 * @module
 */
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { CorruptError, ExitCode } from "../errors.ts";
import { syncablePathProblem } from "./path.ts";
import { linkEntryProblem } from "./link.ts";
import { compareRefs, formatRef, type ModelRef, refProblem } from "./ref.ts";

/**
 * One file as last synced: content hash plus the stat seen when it landed or
 * was hashed. A symbolic link carries its target in `link`, as a manifest
 * entry does (`sha256` and `size` describe the target's UTF-8 bytes).
 */
export interface BaseFile {
  path: string;
  sha256: string;
  size: number;
  executable: boolean;
  mtimeMs: number;
  link?: string;
}

/** The last synced state of one model. */
export interface BaseState {
  format: 1;
  /** `type/id`, checked against the file it is stored in. */
  model: string;
  /** Generation of the manifest last synced (0: never committed). */
  generation: number;
  /** The provider's opaque version token of that manifest (zero-diff fast path). */
  version: string;
  /** Sorted by path. */
  files: BaseFile[];
  /**
   * When this base was recorded (local clock). A file whose mtime is within
   * 2 s of it is "racily clean" and gets re-hashed by the scanner.
   */
  syncedAtMs: number;
}

/** 64 lowercase hex digits; a loop, as this runs once per file of every base read. */
function isSha256(s: string): boolean {
  if (s.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/** Directory holding the base files: `.modelsync/base`. */
export function baseDir(repoDir: string): string {
  return join(repoDir, ".modelsync", "base");
}

/** Path of one model's base file: `.modelsync/base/TYPE/ID.json`. */
export function basePath(repoDir: string, model: ModelRef): string {
  return join(baseDir(repoDir), ...model.type.split("/"), `${model.id}.json`);
}

/**
 * Reads a model's base. Missing: `null`. Unparsable, wrong shape, another
 * model's, or naming an escaping path: {@linkcode CorruptError} with exit
 * code 2 and the remedy (delete it and pull).
 */
export function readBase(repoDir: string, model: ModelRef): Promise<BaseState | null> {
  try {
    return Promise.resolve(readBaseSync(repoDir, model));
  } catch (err) {
    return Promise.reject(err);
  }
}

/** {@linkcode readBase}, synchronously. */
export function readBaseSync(repoDir: string, model: ModelRef): BaseState | null {
  const path = basePath(repoDir, model);
  let text: string;
  try {
    // Synchronous: one small read per model, and an async read costs several
    // times as much in Deno (this is on the path of every no-op sync).
    text = Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw corrupt(model, "it is not valid JSON", err);
  }
  const problem = baseProblem(data, model);
  if (problem !== undefined) throw corrupt(model, problem);
  return data as BaseState;
}

function corrupt(model: ModelRef, why: string, cause?: unknown): CorruptError {
  const ref = formatRef(model);
  const rel = `.modelsync/base/${ref}.json`;
  return new CorruptError(
    `Base file ${rel} of ${ref} is corrupt (${why}): delete ${rel} and run "modelsync pull ${ref}".`,
    { exitCode: ExitCode.usage, cause },
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function isTime(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/** Explains why `data` is not a valid base of `model`, or undefined. Hand-rolled: it is hot. */
function baseProblem(data: unknown, model: ModelRef): string | undefined {
  if (!isRecord(data)) return "not a JSON object";
  if (data.format !== 1) return `unknown format ${JSON.stringify(data.format)}`;
  if (data.model !== formatRef(model)) return `it names model ${JSON.stringify(data.model)}`;
  if (!isCount(data.generation)) return "generation is not a whole number";
  if (typeof data.version !== "string") return "version is not a string";
  if (!isTime(data.syncedAtMs)) return "syncedAtMs is not a number";
  if (!Array.isArray(data.files)) return "files is not a list";
  const seen = new Set<string>();
  for (let i = 0; i < data.files.length; i++) {
    const f: unknown = data.files[i];
    if (!isRecord(f)) return `files[${i}] is not an object`;
    if (typeof f.path !== "string") return `files[${i}].path is not a string`;
    const bad = syncablePathProblem(f.path);
    if (bad !== undefined) return `path ${JSON.stringify(f.path)}: ${bad}`;
    if (seen.has(f.path)) return `path ${JSON.stringify(f.path)} is listed twice`;
    seen.add(f.path);
    if (typeof f.sha256 !== "string" || !isSha256(f.sha256)) {
      return `files[${i}].sha256 is not a SHA-256`;
    }
    if (!isCount(f.size)) return `files[${i}].size is not a whole number`;
    if (typeof f.executable !== "boolean") return `files[${i}].executable is not a boolean`;
    if (!isTime(f.mtimeMs)) return `files[${i}].mtimeMs is not a number`;
    if (f.link !== undefined) {
      const badLink = typeof f.link === "string"
        ? linkEntryProblem(f as { sha256: string; size: number; executable: boolean; link: string })
        : "its link is not a string";
      if (badLink !== undefined) return `path ${JSON.stringify(f.path)}: ${badLink}`;
    }
  }
  return undefined;
}

/**
 * Writes a model's base atomically: a temporary file beside it, then rename.
 * Creates the directories it needs. Files are stored sorted by path.
 */
export async function writeBase(repoDir: string, model: ModelRef, state: BaseState): Promise<void> {
  const path = basePath(repoDir, model);
  const dir = join(path, "..");
  await Deno.mkdir(dir, { recursive: true });
  const files = isSorted(state.files) ? state.files : [...state.files].sort(byPath);
  const body: BaseState = {
    format: 1,
    model: formatRef(model),
    generation: state.generation,
    version: state.version,
    files: files.map((f) => ({
      path: f.path,
      sha256: f.sha256,
      size: f.size,
      executable: f.executable,
      mtimeMs: f.mtimeMs,
      ...(f.link === undefined ? {} : { link: f.link }),
    })),
    syncedAtMs: state.syncedAtMs,
  };
  // Leading "." keeps the temp name from ever parsing as a model id.
  const tmp = join(dir, `.${model.id}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    await Deno.writeTextFile(tmp, JSON.stringify(body));
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

function byPath(a: { path: string }, b: { path: string }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

function isSorted(files: BaseFile[]): boolean {
  for (let i = 1; i < files.length; i++) if (files[i - 1].path >= files[i].path) return false;
  return true;
}

/** Deletes a model's base (missing is fine) and its now-empty TYPE directories. */
export async function removeBase(repoDir: string, model: ModelRef): Promise<void> {
  try {
    await Deno.remove(basePath(repoDir, model));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const segs = model.type.split("/");
  for (let n = segs.length; n > 0; n--) {
    try {
      await Deno.remove(join(baseDir(repoDir), ...segs.slice(0, n)));
    } catch {
      return; // not empty, or already gone
    }
  }
}

/** Every model that has a base file, sorted by ref. TYPE may be `@scope/name`. */
export async function listBaseModels(repoDir: string): Promise<ModelRef[]> {
  const root = baseDir(repoDir);
  const out: ModelRef[] = [];
  const collect = async (type: string, dir: string) => {
    for (const e of await readDirSafe(dir)) {
      if (!e.isFile || !e.name.endsWith(".json")) continue;
      const id = e.name.slice(0, -".json".length);
      if (refProblem(`${type}/${id}`) === undefined) out.push({ type, id });
    }
  };
  for (const e of await readDirSafe(root)) {
    if (!e.isDirectory) continue;
    if (e.name.startsWith("@")) {
      for (const t of await readDirSafe(join(root, e.name))) {
        if (t.isDirectory) await collect(`${e.name}/${t.name}`, join(root, e.name, t.name));
      }
    } else {
      await collect(e.name, join(root, e.name));
    }
  }
  return out.sort(compareRefs);
}

async function readDirSafe(dir: string): Promise<Deno.DirEntry[]> {
  try {
    return await Array.fromAsync(Deno.readDir(dir));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return [];
    throw err;
  }
}
