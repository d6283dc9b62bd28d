/**
 * A command's workspace and session. The workspace is the repository, its
 * config and the settings, resolved once per run without touching the
 * datastore (plain `status` needs no more). A session adds the datastore
 * provider and its capabilities, read once.
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
import {
  type Env,
  type Origins,
  resolveSetting,
  resolveSettings,
  type Settings,
} from "./settings.ts";
import { SKEW_MARGIN_MS } from "../lock/mod.ts";

/** Who this process is, for lock records and manifests. */
export interface Identity {
  holder: string;
  host: string;
  pid: number;
}

/** What a command may need of a repository. */
export type RepoNeed = "required" | "optional" | "none";

/** The repository, its config and the run's settings; no datastore opened. */
export interface Workspace {
  /** Undefined outside a repository (datastore-only commands, init). */
  repoDir?: string;
  config?: RepoConfig;
  settings: Settings;
  /** Where each setting came from (flag, environment, file, default). */
  origins: Origins;
  /** The datastore to open: --datastore / MODELSYNC_DATASTORE, else modelsync.yaml. */
  datastore?: DatastoreConfig;
  /** Parallel transfers before a datastore suggests a number: --jobs, else 8. */
  jobs: number;
  identity: Identity;
  signal: AbortSignal;
}

/** A workspace with a repository. */
export type RepoWorkspace = Workspace & { repoDir: string; config: RepoConfig };

/** A workspace with its datastore open. */
export interface Session extends Workspace {
  /** The datastore: the provider's primitives with the protocol on top. */
  provider: Datastore;
  capabilities: CapabilityReading;
  /** Parallel transfers and models: --jobs, else the provider's maxConcurrency. */
  jobs: number;
  close(): Promise<void>;
}

/** A session that has a repository. */
export type RepoSession = Session & { repoDir: string; config: RepoConfig };

/** Options for {@linkcode prepareWorkspace}. */
export interface PrepareOptions {
  /** The command's parsed options (commander's `optsWithGlobals()`). */
  flags: Readonly<Record<string, unknown>>;
  env: Env;
  cwd: string;
  signal: AbortSignal;
  /** "none": do not look for a repository (init makes one). */
  repo: RepoNeed;
}

/** Jobs before the datastore suggests a number (local work: hashing). */
const LOCAL_JOBS = 8;

/**
 * Finds the repository, reads its config and resolves the settings, once.
 * Opens no datastore. A missing repository is an error only when `repo` is
 * "required", or "optional" without --datastore.
 */
export async function prepareWorkspace(opts: PrepareOptions): Promise<Workspace> {
  // Where the repository and the datastore are must be known before the file is read.
  const datastoreFlag = resolveSetting("datastore", opts);
  const pre = {
    repo: resolveSetting("repo", opts).value as string | undefined,
    datastore: datastoreFlag.value as string | undefined,
  };
  let repoDir: string | undefined;
  if (opts.repo !== "none") {
    if (pre.repo !== undefined) {
      const wanted = path.resolve(opts.cwd, pre.repo);
      const found = await findRepo(wanted).catch(() => undefined);
      if (found !== wanted) {
        throw new NotFoundError(
          `No modelsync.yaml in ${wanted}: run "modelsync init" there or pass the right --repo.`,
        );
      }
      repoDir = wanted;
    } else {
      try {
        repoDir = await findRepo(opts.cwd);
      } catch (err) {
        if (opts.repo === "required" || pre.datastore === undefined) throw err;
      }
    }
  }
  const override = pre.datastore === undefined
    ? undefined
    : parseDatastoreSpec(pre.datastore, repoDir ?? opts.cwd, datastoreFlag.origin.name);
  const config = repoDir === undefined
    ? undefined
    : await loadConfig(repoDir, override ? { datastoreOverride: override } : {});
  const { settings, origins } = resolveSettings({
    flags: opts.flags,
    env: opts.env,
    ...(config === undefined ? {} : { config }),
  });
  const datastore = config?.datastore ?? override;
  return {
    ...(repoDir === undefined ? {} : { repoDir, config }),
    settings,
    origins,
    ...(datastore === undefined ? {} : { datastore }),
    jobs: settings.jobs ?? LOCAL_JOBS,
    identity: { holder: settings.holder, host: os.hostname(), pid: process.pid },
    signal: opts.signal,
  };
}

/** Options for {@linkcode openSession}. */
export interface OpenOptions {
  /** Called once per datastore request, by kind (`-v` counts them). */
  onCall?: (op: string) => void;
  /** Open a datastore of format 1 too (only `migrate`). */
  format1?: boolean;
}

/** Opens the workspace's datastore and reads its capabilities once. */
export async function openSession(w: Workspace, opts: OpenOptions = {}): Promise<Session> {
  if (w.datastore === undefined) {
    throw new NotFoundError(
      `No modelsync repository at or above ${w.repoDir ?? process.cwd()}: run "modelsync init" ` +
        `there, or pass --repo DIR or --datastore SPEC.`,
    );
  }
  const fromFlag = w.origins.datastore.source === "flag" || w.origins.datastore.source === "env";
  const primitives = await createProvider(w.datastore, {
    callTimeoutMs: w.settings.callTimeoutMs,
    // No run signal here: calls get it one by one, so that lock releases in
    // `finally` still reach the datastore after an interrupt or --timeout.
    host: w.identity.host,
    pid: w.identity.pid,
    baseDir: w.repoDir ?? process.cwd(),
    ...(w.settings.jobs === undefined ? {} : { jobs: w.settings.jobs }),
  }, {
    origin: fromFlag ? w.origins.datastore.name : "modelsync.yaml",
    ...(opts.onCall ? { onCall: opts.onCall } : {}),
  });
  const provider = new Datastore(primitives, {
    host: w.identity.host,
    pid: w.identity.pid,
    skewMarginMs: SKEW_MARGIN_MS,
  });
  try {
    await provider.open({ signal: w.signal, format1: opts.format1 === true });
  } catch (err) {
    await provider.close().catch(() => {});
    throw err;
  }
  const capabilities = readCapabilities(provider, w.settings.disableCaps);
  provider.useCapabilities(capabilities.caps);
  // Read-only credentials are said when a lock or commit is tried (and by
  // caps), not on every read.
  for (const warning of capabilities.warnings) {
    if (provider.readOnly) logger("provider").debug(warning);
    else logger("provider").warn(warning);
  }
  const where = provider.describe();
  logger("provider").debug(
    `Opened the ${where.type} datastore at ${where.location}: ${
      capabilities.caps.scopedSync ? "scoped" : "global"
    } lock path, ${w.settings.jobs ?? capabilities.caps.maxConcurrency} parallel transfers.`,
  );
  return {
    ...w,
    provider,
    capabilities,
    jobs: w.settings.jobs ?? capabilities.caps.maxConcurrency,
    close: () => provider.close(),
  };
}

/** Narrows a workspace or session to one with a repository (commands that touch local files). */
export function requireRepo<W extends Workspace>(
  w: W,
): W & { repoDir: string; config: RepoConfig } {
  if (w.repoDir === undefined || w.config === undefined) {
    throw new NotFoundError(
      `This command needs a modelsync repository: run "modelsync init" or pass --repo DIR.`,
    );
  }
  return w as W & { repoDir: string; config: RepoConfig };
}
