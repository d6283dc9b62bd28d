/**
 * `init`: writes modelsync.yaml, creates the local folders and the datastore
 * marker. Idempotent.
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
import { CONFIG_FILE, ensureGitignore, findRepo, loadConfig, writeConfig } from "../repo/config.ts";
import { type GlobalFlags, resolveSettings } from "./settings.ts";

/** The `init` result. */
export interface InitResult {
  schema: "modelsync.init/1";
  repo: string;
  config: string;
  datastore: { type: string; location: string };
}

/** Initialises a repository in --repo or the current directory. */
export async function runInit(
  opts: {
    flags: GlobalFlags;
    env: Record<string, string | undefined>;
    cwd: string;
    signal: AbortSignal;
  },
): Promise<InitResult> {
  const settings = resolveSettings({ flags: opts.flags, env: opts.env });
  const repoDir = path.resolve(opts.cwd, settings.repo ?? ".");
  const configPath = path.join(repoDir, CONFIG_FILE);
  const exists = await Deno.stat(configPath).then(() => true, () => false);
  if (!exists) await refuseInsideDataFolder(repoDir);
  if (settings.datastore !== undefined) {
    await Deno.mkdir(repoDir, { recursive: true });
    await writeConfig(repoDir, {
      datastore: settings.datastore,
      // Two specs name the same datastore when their providers parse them alike.
      sameDatastore: async (a, b) => {
        const [ra, rb] = await Promise.all([resolveDatastore(a), resolveDatastore(b)]);
        return ra.mod.type === rb.mod.type &&
          JSON.stringify(ra.config) === JSON.stringify(rb.config);
      },
    });
  } else if (!exists) {
    throw new UsageError(
      `No datastore given for the new repository in ${repoDir}: pass --datastore filesystem:/path (or set MODELSYNC_DATASTORE).`,
    );
  }
  await ensureGitignore(repoDir);
  const config = await loadConfig(repoDir);
  const provider = await createProvider(config.datastore, {
    callTimeoutMs: settings.callTimeoutMs,
    host: os.hostname(),
    pid: process.pid,
    baseDir: repoDir,
  });
  const ds = new Datastore(provider, {
    host: os.hostname(),
    pid: process.pid,
    skewMarginMs: SKEW_MARGIN_MS,
  });
  try {
    await ds.init({ signal: opts.signal });
    return {
      schema: "modelsync.init/1",
      repo: repoDir,
      config: configPath,
      datastore: ds.describe(),
    };
  } finally {
    await ds.close();
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
