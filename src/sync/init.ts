/**
 * `init`: creates the datastore marker, then writes modelsync.yaml, the
 * local folders and the .gitignore entries. Idempotent; a failed init leaves
 * no modelsync.yaml behind.
 *
 * @module
 */
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { UsageError } from "../errors.ts";
import { SKEW_MARGIN_MS } from "../lock/mod.ts";
import { Datastore } from "../provider/datastore.ts";
import { createProvider, resolveDatastore } from "../providers/mod.ts";
import {
  CONFIG_FILE,
  ensureGitignore,
  findRepo,
  loadConfig,
  writeConfig,
  writeTextAtomic,
} from "../repo/config.ts";
import { type DatastoreConfig, parseDatastoreSpec, redactSpec } from "../repo/datastore_spec.ts";
import type { Workspace } from "./session.ts";

/** The `init` result. */
export interface InitResult {
  schema: "modelsync.init/1";
  repo: string;
  config: string;
  datastore: { type: string; location: string };
  /** Lines added to .gitignore (none when present already, or with --no-gitignore). */
  gitignoreAdded: string[];
}

/**
 * Initialises a repository in --repo or the current directory.
 *
 * Nothing is written until the datastore is known to be acceptable: its
 * spec is parsed and validated by its provider first (a user name or
 * password in an S3 endpoint, an unknown or unavailable type, a bad key are
 * refused here, so no secret ever reaches `modelsync.yaml`). A new
 * `modelsync.yaml` is written only after the datastore marker exists, so a
 * failed init (datastore unreachable, marker write refused, interrupted)
 * leaves none behind. An existing `modelsync.yaml` is never removed; if
 * init added its missing datastore and then failed, its old text is put back.
 */
export async function runInit(
  w: Workspace,
  opts: { cwd: string; gitignore: boolean },
): Promise<InitResult> {
  const { settings } = w;
  const repoDir = path.resolve(opts.cwd, settings.repo ?? ".");
  const configPath = path.join(repoDir, CONFIG_FILE);
  const before = await readIfExists(configPath);
  const exists = before !== undefined;
  if (!exists) await refuseInsideDataFolder(repoDir);
  if (settings.datastore === undefined && !exists) {
    throw new UsageError(
      `No datastore given for the new repository in ${repoDir}: pass --datastore filesystem:/path (or set MODELSYNC_DATASTORE).`,
    );
  }
  if (settings.datastore !== undefined && specHasPassword(settings.datastore)) {
    throw new UsageError(
      `Invalid ${w.origins.datastore.name} ${JSON.stringify(redactSpec(settings.datastore))}: ` +
        `it holds a password, and init never writes one into ${CONFIG_FILE}. Remove it from ` +
        `the URL and give it to the datastore's client (for postgres: PGPASSWORD or ~/.pgpass).`,
    );
  }
  const datastore = settings.datastore !== undefined
    ? parseDatastoreSpec(settings.datastore, repoDir, w.origins.datastore.name)
    : (await loadConfig(repoDir)).datastore;
  const provider = await createProvider(datastore, {
    callTimeoutMs: settings.callTimeoutMs,
    host: os.hostname(),
    pid: process.pid,
    baseDir: repoDir,
  }, {
    // The spec came from --datastore or the environment, else from the existing file.
    origin: settings.datastore !== undefined ? w.origins.datastore.name : "modelsync.yaml",
  });
  const ds = new Datastore(provider, {
    host: os.hostname(),
    pid: process.pid,
    skewMarginMs: SKEW_MARGIN_MS,
  });
  try {
    // An existing file is checked against the spec before the datastore is touched.
    if (exists && settings.datastore !== undefined) {
      await writeConfig(repoDir, { datastore: settings.datastore, sameDatastore });
    }
    try {
      await ds.init({ signal: w.signal });
    } catch (err) {
      if (exists && (await readIfExists(configPath)) !== before) {
        await writeTextAtomic(configPath, before);
      }
      throw err;
    }
    if (!exists) {
      await Deno.mkdir(repoDir, { recursive: true });
      await writeConfig(repoDir, { datastore: settings.datastore!, sameDatastore });
    }
    const config = await loadConfig(repoDir);
    const gitignoreAdded = opts.gitignore
      ? await ensureGitignore(repoDir, [`${config.dataDir}/`, ".modelsync/"])
      : [];
    return {
      schema: "modelsync.init/1",
      repo: repoDir,
      config: configPath,
      datastore: ds.describe(),
      gitignoreAdded,
    };
  } finally {
    await ds.close();
  }
}

/** Human lines for `init`. */
export function formatInit(r: InitResult): string[] {
  // A URL location (s3://…) names its type already; a path does not.
  const { type, location } = r.datastore;
  const where = location.includes("://") ? location : `${type}:${location}`;
  const lines = [`Initialised ${r.repo} with datastore ${where}`];
  if (r.gitignoreAdded.length > 0) {
    lines.push(`Added ${r.gitignoreAdded.join(" and ")} to .gitignore`);
  }
  return lines;
}

/**
 * True when a URL-like spec has a password in its user info
 * (`scheme://user:password@host…`; up to the last `@` before a query, as a
 * password may itself hold a `/`).
 */
export function specHasPassword(spec: string): boolean {
  // S3's own parser refuses any user name or password in its URLs, for every
  // command, with a message of its own.
  if (/^s3:\/\//i.test(spec.trim())) return false;
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^?#]*)@/i.exec(spec.trim());
  if (m === null) return false;
  const colon = m[1].indexOf(":");
  const slash = m[1].indexOf("/");
  return colon >= 0 && (slash < 0 || colon < slash) && colon < m[1].length - 1;
}

/** Two specs name the same datastore when their providers parse them alike. */
async function sameDatastore(a: DatastoreConfig, b: DatastoreConfig): Promise<boolean> {
  const [ra, rb] = await Promise.all([resolveDatastore(a), resolveDatastore(b)]);
  return ra.mod.type === rb.mod.type && JSON.stringify(ra.config) === JSON.stringify(rb.config);
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/**
 * Refuses a new repository inside another repository's data folder: the
 * outer one would sync the inner one's files, `modelsync.yaml` included.
 * Symlinks are resolved first, and every enclosing repository is checked.
 */
async function refuseInsideDataFolder(repoDir: string): Promise<void> {
  const real = await realPathOfNearest(repoDir);
  let from = path.dirname(real);
  for (;;) {
    let outer: string;
    try {
      outer = await findRepo(from);
    } catch {
      return; // no repository above: fine
    }
    const dataDir = await loadConfig(outer).then((c) => c.dataDir, () => "models");
    const data = await realPathOfNearest(path.join(outer, dataDir));
    if (real === data || real.startsWith(data + path.sep)) {
      throw new UsageError(
        `Cannot create a repository in ${repoDir}: it is inside the data folder of the repository ` +
          `at ${outer}, which would sync it. Choose a directory outside ${data}.`,
      );
    }
    const parent = path.dirname(outer);
    if (parent === outer) return;
    from = parent;
  }
}

/** The real path of `p`, resolving symlinks in its nearest existing ancestor. */
async function realPathOfNearest(p: string): Promise<string> {
  const rest: string[] = [];
  let cur = path.resolve(p);
  for (;;) {
    try {
      return path.join(await Deno.realPath(cur), ...rest.reverse());
    } catch {
      const parent = path.dirname(cur);
      if (parent === cur) return path.resolve(p);
      rest.push(path.basename(cur));
      cur = parent;
    }
  }
}
