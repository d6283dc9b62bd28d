/**
 * The repository configuration, `modelsync.yaml`: finding it, reading and
 * validating it, writing it on `init`, and datastore specs
 * (`filesystem:/path`, `s3://bucket/prefix`, `azure://container/prefix`, `postgres://…`).
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
import { refPatternProblem } from "../model/ref_pattern.ts";
import { CONFIG_KEYS, type ConfigKey, type ConfigKeySpec } from "./config_keys.ts";
import type { SymlinkMode } from "./scan.ts";
import { parseDuration } from "../duration.ts";
import { type DatastoreConfig, parseDatastoreSpec, redactSpec } from "./datastore_spec.ts";

export type { DatastoreConfig } from "./datastore_spec.ts";

/** A validated `modelsync.yaml`. */
export interface RepoConfig {
  datastore: DatastoreConfig;
  /** Folder holding `TYPE/ID/…`, relative to the repository. Default `models`. */
  dataDir: string;
  /** Glob patterns, relative to each model directory, never synced. */
  exclude: string[];
  /**
   * Sparse repository: refs or globs (`vision/*`) of the models a bare
   * `pull` and `status --remote` consider. Absent: every model.
   */
  models?: string[];
  /**
   * Symbolic links that leave their model: `store` (default) refuses to push
   * the model, `follow` syncs the content of the file they point to. Links
   * inside the model are synced as links either way.
   */
  symlinks?: SymlinkMode;
  /** push/flush commit a whole-model delete of an unnamed model (`--allow-delete`). */
  allowDelete?: boolean;
  /**
   * Push writes files up to 512 KiB into packs (default true; design/format.md,
   * "Packs"). False stores every file as a blob of its own, which clients
   * older than packs can read (they refuse a packed manifest as corrupt).
   */
  packSmallFiles?: boolean;
  lockTimeout?: string;
  timeout?: string;
  jobs?: number;
  disableCaps?: string[];
  holder?: string;
  /** The keys the file sets (for `config show`); absent in configs built in code. */
  fileKeys?: readonly string[];
}

/** Name of the configuration file that marks a repository. */
export const CONFIG_FILE = "modelsync.yaml";
/** Default `dataDir`. */
export const DEFAULT_DATA_DIR = "models";

export { CONFIG_KEYS, type ConfigKey, type ConfigKeySpec } from "./config_keys.ts";

const KNOWN_KEYS = Object.keys(CONFIG_KEYS) as ConfigKey[];

/** A parsed file, before paths and durations are checked. */
type RawConfig = { [K in ConfigKey]?: z.infer<typeof CONFIG_KEYS[K]["schema"]> };

const configSchema = z.object(
  Object.fromEntries(KNOWN_KEYS.map((k) => [k, CONFIG_KEYS[k].schema.optional()])),
).strict();

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
  const c = parsed.data as RawConfig;

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
      throw invalid(
        `"${key}" must be ${CONFIG_KEYS[key].expected}, not ${JSON.stringify(v)}. Fix the value.`,
      );
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
      : c.datastore as DatastoreConfig;
  }
  return {
    datastore,
    dataDir,
    exclude: c.exclude ?? [],
    ...(c.models === undefined ? {} : { models: checkModelPatterns(c.models, invalid) }),
    ...(c.symlinks === undefined ? {} : { symlinks: c.symlinks as SymlinkMode }),
    ...(c.allowDelete === undefined ? {} : { allowDelete: c.allowDelete as boolean }),
    ...(c.packSmallFiles === undefined ? {} : { packSmallFiles: c.packSmallFiles as boolean }),
    ...durations,
    ...(c.jobs === undefined ? {} : { jobs: c.jobs }),
    ...(c.disableCaps === undefined ? {} : { disableCaps: c.disableCaps }),
    ...(c.holder === undefined ? {} : { holder: c.holder }),
    fileKeys: Object.keys(data as Record<string, unknown>),
  };
}

function checkModelPatterns(
  patterns: readonly string[],
  invalid: (why: string) => UsageError,
): string[] {
  for (const p of patterns) {
    const problem = refPatternProblem(p);
    if (problem !== undefined) {
      throw invalid(
        `"models" entry ${JSON.stringify(p)}: ${problem}. Use model refs or globs such as ` +
          `"vision/*" or "@acme/*/*".`,
      );
    }
  }
  return [...patterns];
}

function describeIssue(issue: z.core.$ZodIssue, data: unknown): string {
  if (issue.code === "unrecognized_keys") {
    return `unknown key "${issue.keys[0]}". Remove it or fix the spelling ` +
      `(known keys: ${KNOWN_KEYS.join(", ")}).`;
  }
  const key = String(issue.path[0] ?? "");
  const value = (data as Record<string, unknown>)[key];
  const expected = (CONFIG_KEYS as Record<string, ConfigKeySpec>)[key]?.expected ?? "valid";
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
 * it names a different one. Returns the path of the configuration file.
 */
export async function writeConfig(
  repoDir: string,
  opts: {
    datastore: string;
    dataDir?: string;
    /**
     * Whether two datastores are the same (the caller knows the providers,
     * which parse their specs); default: the same spec string or keys.
     */
    sameDatastore?: (a: DatastoreConfig, b: DatastoreConfig) => Promise<boolean>;
  },
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
    await writeTextAtomic(file, configTemplate(body));
  } else {
    dataDir = await reconcile(file, existingText, {
      repoDir,
      wanted,
      spec: opts,
      requestedDir,
      same: opts.sameDatastore ?? ((a, b) => Promise.resolve(sameValue(a, b))),
    });
  }
  try {
    await Deno.mkdir(join(repoDir, dataDir), { recursive: true });
    await Deno.mkdir(join(repoDir, ".modelsync"), { recursive: true });
  } catch (err) {
    // A half-made repository must not look initialised: drop the file we created.
    if (existingText === undefined) await Deno.remove(file).catch(() => {});
    throw err;
  }
  return file;
}

/**
 * The text of a new `modelsync.yaml`: the keys in `body`, then every other
 * key of {@linkcode CONFIG_KEYS} commented out with an example and what it
 * does, so a user sees what can be set without opening the README.
 */
export function configTemplate(body: Record<string, unknown>): string {
  const rows = KNOWN_KEYS.filter((k) => !(k in body)).map((k) => {
    const t = CONFIG_KEYS[k].template;
    return { left: `# ${k}: ${t.value}`, comment: t.comment };
  });
  const width = Math.max(...rows.map((r) => r.left.length));
  return `# modelsync repository. Relative paths are relative to this folder.\n` +
    stringifyYaml(body, { lineWidth: 0 }) +
    `\n# Other keys (uncomment to set; the value shown is the default or an example):\n` +
    rows.map((r) => `${r.left.padEnd(width)}  # ${r.comment}\n`).join("");
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
    same: (a: DatastoreConfig, b: DatastoreConfig) => Promise<boolean>;
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
  if (hasDatastore && !(await ctx.same(current.datastore, ctx.wanted))) {
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
  // A spec may hold credentials (user info, a query): never print them.
  return typeof ds.spec === "string" ? redactSpec(ds.spec) : `a ${ds.type} datastore`;
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

/**
 * Adds each of `entries` (folders such as `models/` and `.modelsync/`) to
 * the repository's `.gitignore` unless a line already covers it. Returns the
 * entries added.
 */
export async function ensureGitignore(
  repoDir: string,
  entries: readonly string[] = [".modelsync/"],
): Promise<string[]> {
  const path = join(repoDir, ".gitignore");
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const have = new Set(
    text.split(/\r?\n/).map((l) => l.trim().replace(/^\//, "").replace(/\/$/, "")),
  );
  const added = entries.filter((e) => !have.has(e.replace(/^\//, "").replace(/\/$/, "")));
  if (added.length === 0) return [];
  const sep = text === "" || text.endsWith("\n") ? "" : "\n";
  await Deno.writeTextFile(path, `${text}${sep}${added.join("\n")}\n`);
  return added;
}
