/**
 * The repository configuration, `modelsync.yaml`: finding it, reading and
 * validating it, writing it on `init`, and datastore specs
 * (`filesystem:/path`, `s3://bucket/prefix`, `postgres://…`).
 *
 * @example
 * ```ts
 * import { loadConfig, writeConfig } from "./config.ts";
 * const repo = await Deno.makeTempDir();
 * await writeConfig(repo, { datastore: "filesystem:/srv/models" });
 * const config = await loadConfig(repo);
 * console.log(config.datastore, config.dataDir); // { type: "filesystem", path: "/srv/models" } models
 * await Deno.remove(repo, { recursive: true });
 * ```
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { parse as parseYaml, parseDocument, stringify as stringifyYaml } from "yaml";
import { z } from "zod";
import { NotFoundError, UsageError } from "../errors.ts";
import { pathProblem } from "../model/path.ts";
import { CAPABILITY_NAMES } from "../provider/contract.ts";
import { parseDuration } from "../duration.ts";
import { type DatastoreConfig, localPath, parseDatastoreSpec } from "./datastore_spec.ts";
import type { SymlinkMode } from "./scan.ts";

export type { DatastoreConfig } from "./datastore_spec.ts";

/** A validated `modelsync.yaml`. */
export interface RepoConfig {
  datastore: DatastoreConfig;
  /** Folder holding `TYPE/ID/…`, relative to the repository. Default `models`. */
  dataDir: string;
  /** Glob patterns, relative to each model directory, never synced. */
  exclude: string[];
  /**
   * Symbolic links that leave their model: `store` (default) refuses to push
   * the model, `follow` syncs the content of the file they point to. Links
   * inside the model are synced as links either way.
   */
  symlinks?: SymlinkMode;
  lockTimeout?: string;
  timeout?: string;
  jobs?: number;
  disableCaps?: string[];
  holder?: string;
  /** push/flush commit a whole-model delete of an unnamed model (`--allow-delete`). */
  allowDelete?: boolean;
}

/** Name of the configuration file that marks a repository. */
export const CONFIG_FILE = "modelsync.yaml";
/** Default `dataDir`. */
export const DEFAULT_DATA_DIR = "models";

const KNOWN_KEYS = [
  "datastore",
  "dataDir",
  "exclude",
  "symlinks",
  "lockTimeout",
  "timeout",
  "jobs",
  "disableCaps",
  "holder",
  "allowDelete",
] as const;

const EXPECTED: Record<(typeof KNOWN_KEYS)[number], string> = {
  datastore: `a spec string like "filesystem:/path" or a mapping with a non-empty "type"`,
  dataDir: `a relative folder name such as "models"`,
  exclude: `a list of glob patterns such as ["*.tmp"]`,
  symlinks: `"store" (links leaving a model stop its push) or "follow" (sync what they point to)`,
  lockTimeout: "a duration like 30s, 2m or 500ms",
  timeout: "a duration like 30s, 2m or 500ms",
  jobs: "a whole number from 1 up",
  disableCaps: `a list of capability names (${CAPABILITY_NAMES.join(", ")})`,
  holder: "a non-empty string",
  allowDelete: "true or false",
};

const durationSchema = z.union([z.string(), z.number().nonnegative()]);
const configSchema = z.object({
  datastore: z.union([z.string(), z.looseObject({ type: z.string().min(1) })]).optional(),
  dataDir: z.string().optional(),
  exclude: z.array(z.string().min(1)).optional(),
  symlinks: z.enum(["store", "follow"]).optional(),
  lockTimeout: durationSchema.optional(),
  timeout: durationSchema.optional(),
  jobs: z.number().int().positive().optional(),
  disableCaps: z.array(z.enum(CAPABILITY_NAMES)).optional(),
  holder: z.string().min(1).optional(),
  allowDelete: z.boolean().optional(),
}).strict();

/**
 * Finds the repository: the nearest directory at or above `start` that holds
 * `modelsync.yaml`. None: {@linkcode NotFoundError} (exit 3).
 */
export async function findRepo(start: string): Promise<string> {
  const from = resolve(start);
  let dir = from;
  for (;;) {
    try {
      if ((await Deno.stat(join(dir, CONFIG_FILE))).isFile) return dir;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory)) {
        throw err;
      }
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new NotFoundError(
    `No modelsync repository at or above ${from}: run "modelsync init" there or pass --repo DIR.`,
  );
}

/**
 * Explains why `dir` cannot be a `dataDir`, or returns undefined. It must be
 * a relative folder inside the repository, not `.modelsync`.
 */
export function dataDirProblem(dir: string): string | undefined {
  const p = pathProblem(dir);
  if (p !== undefined) return p;
  if (dir.split("/")[0] === ".modelsync") return "it is inside .modelsync, the local state";
  if (dir === CONFIG_FILE) return `it is the ${CONFIG_FILE} file`;
  return undefined;
}

function normalizeDataDir(dir: string): string {
  return dir.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
}

/**
 * Reads and validates `modelsync.yaml`. Malformed YAML, unknown keys and
 * wrong types are a {@linkcode UsageError} (exit 2) with a one-line message.
 * `datastoreOverride` (from `--datastore` or the environment) wins over the
 * file's datastore, and makes it optional.
 */
export async function loadConfig(
  repoDir: string,
  opts: { datastoreOverride?: DatastoreConfig } = {},
): Promise<RepoConfig> {
  const file = join(repoDir, CONFIG_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new NotFoundError(
        `No ${CONFIG_FILE} in ${repoDir}: run "modelsync init" there or pass --repo DIR.`,
      );
    }
    throw err;
  }
  const invalid = (why: string) => new UsageError(`Invalid ${CONFIG_FILE} at ${file}: ${why}`);
  let data: unknown;
  try {
    data = parseYaml(text) ?? {};
  } catch (err) {
    const first = (err as Error).message.split("\n")[0].replace(/:$/, "");
    throw invalid(`${first}. Fix the YAML syntax.`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw invalid(
      `the top level must be a mapping of keys. Start from "datastore: filesystem:/path".`,
    );
  }
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) throw invalid(describeIssue(parsed.error.issues[0], data));
  const c = parsed.data;

  const dataDir = normalizeDataDir(c.dataDir ?? DEFAULT_DATA_DIR);
  const dirProblem = dataDirProblem(dataDir);
  if (dirProblem !== undefined) {
    throw invalid(
      `dataDir ${JSON.stringify(c.dataDir)}: ${dirProblem}. ` +
        `Use a relative folder inside the repository, such as "models".`,
    );
  }
  const durations: Pick<RepoConfig, "lockTimeout" | "timeout"> = {};
  for (const key of ["lockTimeout", "timeout"] as const) {
    const v = c[key];
    if (v === undefined) continue;
    try {
      parseDuration(String(v), key);
    } catch {
      throw invalid(`"${key}" must be ${EXPECTED[key]}, not ${JSON.stringify(v)}. Fix the value.`);
    }
    durations[key] = String(v);
  }

  let datastore = opts.datastoreOverride;
  if (datastore === undefined) {
    if (c.datastore === undefined) {
      throw invalid(
        `no datastore is set. Add "datastore: filesystem:/path" to ${CONFIG_FILE} or pass --datastore.`,
      );
    }
    datastore = typeof c.datastore === "string"
      ? parseDatastoreSpec(c.datastore, repoDir)
      : resolveDatastorePaths(c.datastore as DatastoreConfig, repoDir);
  }
  return {
    datastore,
    dataDir,
    exclude: c.exclude ?? [],
    ...(c.symlinks === undefined ? {} : { symlinks: c.symlinks }),
    ...durations,
    ...(c.jobs === undefined ? {} : { jobs: c.jobs }),
    ...(c.disableCaps === undefined ? {} : { disableCaps: c.disableCaps }),
    ...(c.holder === undefined ? {} : { holder: c.holder }),
    ...(c.allowDelete === undefined ? {} : { allowDelete: c.allowDelete }),
  };
}

/** Resolves relative `path` (filesystem) and `module` (module) keys against the repository. */
function resolveDatastorePaths(ds: DatastoreConfig, repoDir: string): DatastoreConfig {
  const out: DatastoreConfig = { ...ds };
  if (ds.type === "filesystem" && typeof ds.path === "string" && ds.path !== "") {
    out.path = localPath(ds.path, repoDir);
  }
  if (ds.type === "module" && typeof ds.module === "string" && ds.module !== "") {
    out.module = localPath(ds.module, repoDir);
  }
  return out;
}

function describeIssue(issue: z.core.$ZodIssue, data: unknown): string {
  if (issue.code === "unrecognized_keys") {
    return `unknown key "${issue.keys[0]}". Remove it or fix the spelling ` +
      `(known keys: ${KNOWN_KEYS.join(", ")}).`;
  }
  const key = String(issue.path[0] ?? "");
  const value = (data as Record<string, unknown>)[key];
  const expected = (EXPECTED as Record<string, string>)[key] ?? "valid";
  // Never echo the datastore: it may hold credentials.
  const shown = key === "datastore" ? undefined : JSON.stringify(value);
  const got = shown === undefined
    ? ""
    : `, not ${shown.length > 60 ? shown.slice(0, 57) + "..." : shown}`;
  return `"${key}" must be ${expected}${got}. Fix the value.`;
}

/**
 * Writes `modelsync.yaml` for `init`, creates `dataDir/` and `.modelsync/`,
 * and adds `.modelsync/` to `.gitignore`. Idempotent when the repository is
 * already initialised with the same datastore; a {@linkcode UsageError} when
 * it names a different one. When a later step fails, a `modelsync.yaml`
 * this call created is removed again. Returns the path of the configuration
 * file. `init` calls it only once the datastore spec has been validated by
 * its provider (no secret in it) and the datastore marker exists.
 */
export async function writeConfig(
  repoDir: string,
  opts: { datastore: string; dataDir?: string },
): Promise<string> {
  const file = join(repoDir, CONFIG_FILE);
  const wanted = parseDatastoreSpec(opts.datastore, repoDir);
  const requestedDir = opts.dataDir === undefined ? undefined : normalizeDataDir(opts.dataDir);
  if (requestedDir !== undefined) {
    const problem = dataDirProblem(requestedDir);
    if (problem !== undefined) {
      throw new UsageError(
        `Invalid data folder ${JSON.stringify(opts.dataDir)}: ${problem}. ` +
          `Use a relative folder inside the repository, such as "models".`,
      );
    }
  }
  let existingText: string | undefined;
  try {
    existingText = await Deno.readTextFile(file);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  let dataDir = requestedDir ?? DEFAULT_DATA_DIR;
  if (existingText === undefined) {
    const body: Record<string, unknown> = { datastore: opts.datastore.trim() };
    if (dataDir !== DEFAULT_DATA_DIR) body.dataDir = dataDir;
    await writeTextAtomic(
      file,
      `# modelsync repository. Relative paths are relative to this folder.\n` +
        stringifyYaml(body, { lineWidth: 0 }),
    );
  } else {
    dataDir = await reconcile(file, existingText, { repoDir, wanted, spec: opts, requestedDir });
  }
  try {
    await Deno.mkdir(join(repoDir, dataDir), { recursive: true });
    await Deno.mkdir(join(repoDir, ".modelsync"), { recursive: true });
    await ensureGitignore(repoDir);
  } catch (err) {
    // A half-made repository must not look initialised: drop the file we created.
    if (existingText === undefined) await Deno.remove(file).catch(() => {});
    throw err;
  }
  return file;
}

/** Checks an existing config against `init`'s wishes; fills in a missing datastore. */
async function reconcile(
  file: string,
  text: string,
  ctx: {
    repoDir: string;
    wanted: DatastoreConfig;
    spec: { datastore: string };
    requestedDir?: string;
  },
): Promise<string> {
  let hasDatastore = false;
  try {
    const data: unknown = parseYaml(text);
    hasDatastore = typeof data === "object" && data !== null &&
      (data as Record<string, unknown>).datastore !== undefined;
  } catch {
    // loadConfig below reports the syntax error.
  }
  const current = await loadConfig(
    ctx.repoDir,
    hasDatastore ? {} : { datastoreOverride: ctx.wanted },
  );
  if (hasDatastore && !sameValue(current.datastore, ctx.wanted)) {
    throw new UsageError(
      `${file} is already initialised with datastore ${describeDatastore(current.datastore)}; ` +
        `edit ${CONFIG_FILE} to change it.`,
    );
  }
  if (ctx.requestedDir !== undefined && ctx.requestedDir !== current.dataDir) {
    throw new UsageError(
      `${file} is already initialised with dataDir "${current.dataDir}"; ` +
        `edit ${CONFIG_FILE} to change it.`,
    );
  }
  if (!hasDatastore) {
    // Keep the user's comments and keys; add the datastore.
    const doc = parseDocument(text);
    doc.set("datastore", ctx.spec.datastore.trim());
    await writeTextAtomic(file, doc.toString({ lineWidth: 0 }));
  }
  return current.dataDir;
}

function describeDatastore(ds: DatastoreConfig): string {
  if (ds.type === "filesystem" && typeof ds.path === "string") return `filesystem:${ds.path}`;
  if (ds.type === "s3") return `s3://${ds.bucket}/${ds.prefix ?? ""}`;
  return ds.type; // postgres URLs may hold credentials: never print them
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false;
  return ka.every((k) =>
    sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])
  );
}

/** Replaces a file's text atomically: a temporary file beside it, renamed into place. */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

const IGNORE_LINES = new Set([".modelsync", ".modelsync/", "/.modelsync", "/.modelsync/"]);

/** Adds `.modelsync/` to the repository's `.gitignore` unless a line already covers it. */
export async function ensureGitignore(repoDir: string): Promise<void> {
  const path = join(repoDir, ".gitignore");
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  if (text.split(/\r?\n/).some((line) => IGNORE_LINES.has(line.trim()))) return;
  const sep = text === "" || text.endsWith("\n") ? "" : "\n";
  await Deno.writeTextFile(path, `${text}${sep}.modelsync/\n`);
}
