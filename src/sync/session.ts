/**
 * A command's session: the repository, its config, the datastore provider and
 * its capabilities (read once), and the run's abort signal.
 *
 * @module
 */
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { NotFoundError } from "../errors.ts";
import { logger } from "../log.ts";
import { type CapabilityReading, readCapabilities } from "../provider/capabilities.ts";
import { Datastore } from "../provider/datastore.ts";
import { createProvider } from "../providers/mod.ts";
import { findRepo, loadConfig, type RepoConfig } from "../repo/config.ts";
import { type DatastoreConfig, parseDatastoreSpec } from "../repo/datastore_spec.ts";
import { type GlobalFlags, resolveSettings, type Settings } from "./settings.ts";
import { SKEW_MARGIN_MS } from "../lock/mod.ts";

/** Who this process is, for lock records and manifests. */
export interface Identity {
  holder: string;
  host: string;
  pid: number;
}

/** Everything a command needs to talk to the repository and the datastore. */
export interface Session {
  /** Undefined for datastore-only commands run outside a repository. */
  repoDir?: string;
  config?: RepoConfig;
  settings: Settings;
  /** The datastore: the provider's primitives with the protocol on top. */
  provider: Datastore;
  capabilities: CapabilityReading;
  /** Parallel transfers and models: --jobs, else the provider's maxConcurrency. */
  jobs: number;
  identity: Identity;
  signal: AbortSignal;
  close(): Promise<void>;
}

/** A session that has a repository. */
export type RepoSession = Session & { repoDir: string; config: RepoConfig };

/** Options for {@linkcode openSession}. */
export interface OpenOptions {
  flags: GlobalFlags;
  env: Record<string, string | undefined>;
  cwd: string;
  signal: AbortSignal;
  /** When false, a missing repository is fine if --datastore names one. */
  requireRepo: boolean;
  /** Open a datastore of format 1 too (only `migrate`). */
  format1?: boolean;
}

/** Finds the repository, reads its config and settings, without opening a datastore. */
export async function locateRepo(
  opts: Pick<OpenOptions, "flags" | "env" | "cwd" | "requireRepo">,
): Promise<
  { repoDir?: string; config?: RepoConfig; settings: Settings; datastore?: DatastoreConfig }
> {
  const pre = resolveSettings({ flags: opts.flags, env: opts.env });
  let repoDir: string | undefined;
  if (pre.repo !== undefined) {
    repoDir = path.resolve(opts.cwd, pre.repo);
    await findRepo(repoDir).then((found) => {
      if (found !== repoDir) {
        throw new NotFoundError(
          `No modelsync.yaml in ${repoDir}: run "modelsync init" there or pass the right --repo.`,
        );
      }
    });
  } else {
    try {
      repoDir = await findRepo(opts.cwd);
    } catch (err) {
      if (opts.requireRepo || pre.datastore === undefined) throw err;
    }
  }
  const override = pre.datastore === undefined
    ? undefined
    : parseDatastoreSpec(pre.datastore, repoDir ?? opts.cwd);
  if (repoDir === undefined) {
    return { settings: pre, ...(override ? { datastore: override } : {}) };
  }
  const config = await loadConfig(repoDir, override ? { datastoreOverride: override } : {});
  const settings = resolveSettings({ flags: opts.flags, env: opts.env, config });
  return { repoDir, config, settings, datastore: config.datastore };
}

/** Opens the datastore named by the repository or --datastore, and reads its capabilities once. */
export async function openSession(opts: OpenOptions): Promise<Session> {
  const located = await locateRepo(opts);
  const { settings } = located;
  if (located.datastore === undefined) {
    throw new NotFoundError(
      `No modelsync repository at or above ${opts.cwd}: run "modelsync init" there, or pass --repo DIR or --datastore SPEC.`,
    );
  }
  const identity: Identity = { holder: settings.holder, host: os.hostname(), pid: process.pid };
  const provider = await openDatastore(located.datastore, {
    callTimeoutMs: settings.callTimeoutMs,
    identity,
    baseDir: located.repoDir ?? opts.cwd,
    signal: opts.signal,
    format1: opts.format1 === true,
  });
  const capabilities = readCapabilities(provider, settings.disableCaps);
  provider.useCapabilities(capabilities.caps);
  for (const w of capabilities.warnings) logger("provider").warn(w);
  return {
    ...(located.repoDir === undefined ? {} : { repoDir: located.repoDir, config: located.config }),
    settings,
    provider,
    capabilities,
    jobs: settings.jobs ?? capabilities.caps.maxConcurrency,
    identity,
    signal: opts.signal,
    close: () => provider.close(),
  };
}

/**
 * Creates the provider of `config` and opens it as a {@linkcode Datastore}
 * (marker checked). Provider calls do not inherit the run's signal: calls
 * get it one by one, so that lock releases in `finally` still reach the
 * datastore after an interrupt or --timeout.
 */
export async function openDatastore(
  config: DatastoreConfig,
  opts: {
    callTimeoutMs: number;
    identity: Identity;
    baseDir: string;
    signal?: AbortSignal;
    format1?: boolean;
  },
): Promise<Datastore> {
  const provider = await createProvider(config, {
    callTimeoutMs: opts.callTimeoutMs,
    host: opts.identity.host,
    pid: opts.identity.pid,
    baseDir: opts.baseDir,
  });
  const ds = new Datastore(provider, {
    host: opts.identity.host,
    pid: opts.identity.pid,
    skewMarginMs: SKEW_MARGIN_MS,
  });
  try {
    await ds.open({
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      format1: opts.format1 === true,
    });
  } catch (err) {
    await ds.close().catch(() => {});
    throw err;
  }
  return ds;
}

/** Narrows a session to one with a repository (commands that touch local files). */
export function requireRepo(session: Session): RepoSession {
  if (session.repoDir === undefined || session.config === undefined) {
    throw new NotFoundError(
      `This command needs a modelsync repository: run "modelsync init" or pass --repo DIR.`,
    );
  }
  return session as RepoSession;
}
