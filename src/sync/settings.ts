/**
 * Resolving the global options: flag > environment > modelsync.yaml > default.
 *
 * @example
 * ```ts
 * import { resolveSettings } from "./settings.ts";
 * const s = resolveSettings({ flags: { jobs: "4" }, env: {}, config: undefined });
 * console.log(s.jobs); // 4
 * ```
 * @module
 */
import os from "node:os";
import { UsageError } from "../errors.ts";
import { type CapabilityName } from "../provider/contract.ts";
import { parseDisabledCaps } from "../provider/capabilities.ts";
import { formatDuration, parseDuration } from "../duration.ts";
import { MAX_LOCK_TTL_MS } from "../provider/stale.ts";
import type { RepoConfig } from "../repo/config.ts";

/** Global options as given on the command line (strings, unparsed). */
export interface GlobalFlags {
  repo?: string;
  datastore?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  lockTimeout?: string;
  lockTtl?: string;
  timeout?: string;
  callTimeout?: string;
  jobs?: string;
  disableCap?: string[];
  holder?: string;
  color?: boolean;
}

/** Resolved settings that every command uses. */
export interface Settings {
  repo?: string;
  datastore?: string;
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  color: boolean;
  lockTimeoutMs: number;
  lockTtlMs: number;
  /** Whole-run deadline; undefined = none. */
  timeoutMs?: number;
  callTimeoutMs: number;
  /** undefined = the provider's maxConcurrency. */
  jobs?: number;
  disableCaps: CapabilityName[];
  holder: string;
  /** Test knob: sleep this long before each blob transfer. */
  testBlobDelayMs: number;
}

/** Environment variable for each global option. */
export const ENV_VARS = {
  repo: "MODELSYNC_REPO",
  datastore: "MODELSYNC_DATASTORE",
  json: "MODELSYNC_JSON",
  quiet: "MODELSYNC_QUIET",
  verbose: "MODELSYNC_VERBOSE",
  lockTimeout: "MODELSYNC_LOCK_TIMEOUT",
  lockTtl: "MODELSYNC_LOCK_TTL",
  timeout: "MODELSYNC_TIMEOUT",
  callTimeout: "MODELSYNC_CALL_TIMEOUT",
  jobs: "MODELSYNC_JOBS",
  disableCap: "MODELSYNC_DISABLE_CAP",
  holder: "MODELSYNC_HOLDER",
  noColor: "MODELSYNC_NO_COLOR",
  testBlobDelay: "MODELSYNC_TEST_BLOB_DELAY_MS",
} as const;

/** Defaults of SPEC §5 and §6. */
export const DEFAULTS = {
  lockTimeoutMs: 60_000,
  lockTtlMs: 30_000,
  callTimeoutMs: 30_000,
} as const;

function envBool(v: string | undefined, name: string): boolean | undefined {
  if (v === undefined || v === "") return undefined;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new UsageError(`Invalid ${name}=${JSON.stringify(v)}: use 1 or 0.`);
}

function parseJobs(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(n) || n < 1 || n > 256) {
    throw new UsageError(
      `Invalid ${what} ${JSON.stringify(text)}: use a whole number from 1 to 256.`,
    );
  }
  return n;
}

/**
 * Resolves flags, environment and config. `config` is absent for commands
 * that run before a repository exists (init) or when it could not be read.
 */
export function resolveSettings(
  src: { flags: GlobalFlags; env: Record<string, string | undefined>; config?: RepoConfig },
): Settings {
  const { flags, env, config } = src;
  const dur = (
    flag: string | undefined,
    envKey: keyof typeof ENV_VARS,
    fromConfig: string | undefined,
    flagName: string,
    configKey: string,
  ): number | undefined => {
    if (flag !== undefined) return parseDuration(flag, `--${flagName}`);
    const e = env[ENV_VARS[envKey]];
    if (e !== undefined && e !== "") return parseDuration(e, ENV_VARS[envKey]);
    if (fromConfig !== undefined) {
      return parseDuration(fromConfig, `${configKey} in modelsync.yaml`);
    }
    return undefined;
  };
  const lockTimeoutMs =
    dur(flags.lockTimeout, "lockTimeout", config?.lockTimeout, "lock-timeout", "lockTimeout") ??
      DEFAULTS.lockTimeoutMs;
  const lockTtlMs = dur(flags.lockTtl, "lockTtl", undefined, "lock-ttl", "lockTtl") ??
    DEFAULTS.lockTtlMs;
  if (lockTtlMs < 100) throw new UsageError(`Invalid --lock-ttl: use at least 100ms.`);
  // A record claiming more is judged corrupt (lockRecordProblem), so never write one.
  if (lockTtlMs > MAX_LOCK_TTL_MS) {
    throw new UsageError(`Invalid --lock-ttl: use at most ${formatDuration(MAX_LOCK_TTL_MS)}.`);
  }
  const timeoutMs = dur(flags.timeout, "timeout", config?.timeout, "timeout", "timeout");
  const callTimeoutMs =
    dur(flags.callTimeout, "callTimeout", undefined, "call-timeout", "callTimeout") ??
      DEFAULTS.callTimeoutMs;
  if (callTimeoutMs < 100) throw new UsageError(`Invalid --call-timeout: use at least 100ms.`);
  let jobs: number | undefined;
  if (flags.jobs !== undefined) jobs = parseJobs(flags.jobs, "--jobs");
  else if (env[ENV_VARS.jobs]) jobs = parseJobs(env[ENV_VARS.jobs]!, ENV_VARS.jobs);
  else if (config?.jobs !== undefined) {
    jobs = parseJobs(String(config.jobs), "jobs in modelsync.yaml");
  }
  let disable: string[];
  if (flags.disableCap !== undefined && flags.disableCap.length > 0) disable = flags.disableCap;
  else if (env[ENV_VARS.disableCap]) disable = [env[ENV_VARS.disableCap]!];
  else disable = config?.disableCaps ?? [];
  const holder = flags.holder ?? (env[ENV_VARS.holder] || undefined) ?? config?.holder ??
    (env.USER || env.USERNAME || safeUser());
  if (!/^[\x21-\x7e]{1,128}$/.test(holder)) {
    throw new UsageError(
      `Invalid holder name ${JSON.stringify(holder)}: use 1-128 printable ASCII characters.`,
    );
  }
  const delay = env[ENV_VARS.testBlobDelay];
  const noColorEnv = env.NO_COLOR !== undefined && env.NO_COLOR !== "" ||
    envBool(env[ENV_VARS.noColor], ENV_VARS.noColor) === true;
  return {
    repo: flags.repo ?? (env[ENV_VARS.repo] || undefined),
    datastore: flags.datastore ?? (env[ENV_VARS.datastore] || undefined),
    json: flags.json ?? envBool(env[ENV_VARS.json], ENV_VARS.json) ?? false,
    quiet: flags.quiet ?? envBool(env[ENV_VARS.quiet], ENV_VARS.quiet) ?? false,
    verbose: flags.verbose ?? envBool(env[ENV_VARS.verbose], ENV_VARS.verbose) ?? false,
    color: flags.color !== false && !noColorEnv,
    lockTimeoutMs,
    lockTtlMs,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    callTimeoutMs,
    ...(jobs === undefined ? {} : { jobs }),
    disableCaps: parseDisabledCaps(disable),
    holder,
    testBlobDelayMs: delay && /^\d+$/.test(delay) ? Number(delay) : 0,
  };
}

function safeUser(): string {
  try {
    return os.userInfo().username || "modelsync";
  } catch {
    return "modelsync";
  }
}
