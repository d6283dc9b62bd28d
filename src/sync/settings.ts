/**
 * The settings of a run: one table, {@linkcode SETTINGS}, names each option's
 * flag, environment variables, `modelsync.yaml` key, default and parser.
 * The command line, `--help`, `config show` and the completion scripts are
 * built from it, and {@linkcode resolveSettings} applies it once per run:
 * flag > environment > modelsync.yaml > default.
 *
 * Adding an option is one entry here (and, when it has a `modelsync.yaml`
 * key, that key's entry in `CONFIG_KEYS` of `src/repo/config.ts`).
 *
 * @example
 * ```ts
 * import { resolveSettings } from "./settings.ts";
 * const { settings, origins } = resolveSettings({ flags: { jobs: "4" }, env: {} });
 * console.log(settings.jobs, origins.jobs.source); // 4 flag
 * ```
 * @module
 */
import os from "node:os";
import { UsageError } from "../errors.ts";
import { CAPABILITY_NAMES, type CapabilityName } from "../provider/contract.ts";
import { parseDisabledCaps } from "../provider/capabilities.ts";
import { formatDuration, parseDuration } from "../duration.ts";
import type { RepoConfig } from "../repo/config.ts";
import { MAX_LOCK_TTL_MS } from "../provider/stale.ts";

/** The environment, as read once at start-up. */
export type Env = Readonly<Record<string, string | undefined>>;

/** Where a setting's value came from. */
export type SettingSource = "flag" | "env" | "file" | "default";

/** A setting's source and the name it was given under (`--jobs`, `MODELSYNC_JOBS`, `jobs`). */
export interface Origin {
  source: SettingSource;
  name: string;
}

/** One option: how it is spelled everywhere, parsed and defaulted. */
export interface SettingSpec<T> {
  /** Commander flags, e.g. `--lock-timeout <dur>` or `-q, --quiet`. */
  flags: string;
  /** One line for `--help` (without the env/key/default note, which is added). */
  help: string;
  /** Environment variables, first set wins. */
  env?: readonly string[];
  /** The `modelsync.yaml` key (a key of `RepoConfig`). */
  config?: keyof RepoConfig;
  /** When true, the key is applied by the config loader, not here (the datastore). */
  configAppliedByLoader?: boolean;
  /** The default, as shown to users. */
  defaultText: string;
  /** Values to complete and to check (`--progress auto|bar|...`). */
  choices?: readonly string[];
  /** Only these commands take the option; absent: a global option. */
  commands?: readonly string[];
  /** The flag may be given several times (values collected in a list). */
  repeatable?: boolean;
  /** Parses a raw value from a flag, an environment variable or the file; `where` names it. */
  parse(raw: unknown, where: string): T;
  /** Reads one environment variable; default: {@linkcode SettingSpec.parse}. Undefined = not set. */
  fromEnv?(value: string, name: string): T | undefined;
  /** The value when no source sets it. */
  fallback(env: Env): T;
  /** Shows a value for `config show`. Default: durations, lists and strings as is. */
  show?(value: T): string;
}

function setting<T>(spec: SettingSpec<T>): SettingSpec<T> {
  return spec;
}

const str = (raw: unknown, where: string): string => {
  if (typeof raw === "string" && raw.trim() !== "") return raw;
  throw new UsageError(`Invalid ${where} ${JSON.stringify(raw)}: it must not be empty.`);
};

const bool = (raw: unknown, where: string): boolean => {
  if (typeof raw === "boolean") return raw;
  if (typeof raw === "string" && /^(1|true|yes|on)$/i.test(raw)) return true;
  if (typeof raw === "string" && /^(0|false|no|off)$/i.test(raw)) return false;
  throw new UsageError(`Invalid ${where}=${JSON.stringify(raw)}: use 1 or 0.`);
};

const duration = (opts: { minMs?: number; maxMs?: number; positive?: boolean } = {}) =>
(
  raw: unknown,
  where: string,
): number => {
  const ms = typeof raw === "number" ? raw * 1000 : parseDuration(String(raw), where);
  if (opts.positive && ms <= 0) {
    throw new UsageError(
      `Invalid ${where} ${JSON.stringify(String(raw))}: it must be longer than 0s ` +
        `(leave it out for no deadline).`,
    );
  }
  if (opts.minMs !== undefined && ms < opts.minMs) {
    throw new UsageError(
      `Invalid ${where} ${JSON.stringify(String(raw))}: use at least ${
        formatDuration(opts.minMs)
      }.`,
    );
  }
  if (opts.maxMs !== undefined && ms > opts.maxMs) {
    throw new UsageError(
      `Invalid ${where} ${JSON.stringify(String(raw))}: use at most ${formatDuration(opts.maxMs)}.`,
    );
  }
  return ms;
};

function parseJobs(raw: unknown, where: string): number {
  const text = String(raw).trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isInteger(n) || n < 1 || n > 256) {
    throw new UsageError(
      `Invalid ${where} ${JSON.stringify(String(raw))}: use a whole number from 1 to 256.`,
    );
  }
  return n;
}

function parseCaps(raw: unknown, where: string): CapabilityName[] {
  const list = Array.isArray(raw) ? raw.map(String) : [String(raw)];
  try {
    return parseDisabledCaps(list);
  } catch (err) {
    throw new UsageError(`Invalid ${where}: ${(err as Error).message}`);
  }
}

function parseHolder(raw: unknown, where: string): string {
  const holder = String(raw);
  if (!/^[\x21-\x7e]{1,128}$/.test(holder)) {
    throw new UsageError(
      `Invalid ${where} ${JSON.stringify(holder)}: use 1-128 printable ASCII characters.`,
    );
  }
  return holder;
}

function safeUser(): string {
  try {
    return os.userInfo().username || "modelsync";
  } catch {
    return "modelsync";
  }
}

/** How progress is shown on stderr. */
export const PROGRESS_MODES = ["auto", "bar", "plain", "json", "none"] as const;
export type ProgressMode = typeof PROGRESS_MODES[number];

/** Every option of modelsync, by the name of its resolved setting. */
export const SETTINGS = {
  repo: setting<string | undefined>({
    flags: "--repo <dir>",
    help: "the repository directory",
    env: ["MODELSYNC_REPO"],
    defaultText: "the nearest parent with modelsync.yaml",
    parse: str,
    fallback: () => undefined,
  }),
  datastore: setting<string | undefined>({
    flags: "--datastore <spec>",
    help: "the datastore: filesystem:/path, a plain path, s3://bucket/prefix, " +
      "azure://container/prefix or postgres://host/db",
    env: ["MODELSYNC_DATASTORE"],
    config: "datastore",
    configAppliedByLoader: true,
    defaultText: "the one in modelsync.yaml (written by init)",
    parse: str,
    fallback: () => undefined,
  }),
  json: setting<boolean>({
    flags: "--json",
    help: "print one JSON document on stdout",
    env: ["MODELSYNC_JSON"],
    defaultText: "off: human text",
    parse: bool,
    fallback: () => false,
  }),
  quiet: setting<boolean>({
    flags: "-q, --quiet",
    help: "print nothing but errors (--json still prints its document)",
    env: ["MODELSYNC_QUIET"],
    defaultText: "off",
    parse: bool,
    fallback: () => false,
  }),
  verbose: setting<boolean>({
    flags: "-v, --verbose",
    help: "say what the command does with the datastore, with request counts at the end",
    env: ["MODELSYNC_VERBOSE"],
    defaultText: "off",
    parse: bool,
    fallback: () => false,
  }),
  progress: setting<ProgressMode>({
    flags: "--progress <mode>",
    help: "progress on stderr: auto (a bar on a terminal, else a line every few seconds), " +
      "bar, plain, json (JSON lines for CI) or none",
    env: ["MODELSYNC_PROGRESS"],
    defaultText: "auto (none with -q)",
    choices: PROGRESS_MODES,
    parse: (raw, where) => {
      const v = String(raw).trim().toLowerCase();
      if ((PROGRESS_MODES as readonly string[]).includes(v)) return v as ProgressMode;
      throw new UsageError(
        `Invalid ${where} ${JSON.stringify(String(raw))}: use one of ${PROGRESS_MODES.join(", ")}.`,
      );
    },
    fallback: () => "auto",
  }),
  color: setting<boolean>({
    flags: "--no-color",
    help: "no colours (colours are used only on a terminal)",
    env: ["NO_COLOR", "MODELSYNC_NO_COLOR"],
    defaultText: "colour on a terminal",
    // The flag is `--no-color`: commander reads it as color = false.
    parse: bool,
    fromEnv: (value, name) =>
      value === "" ? undefined : name === "NO_COLOR" ? false : !bool(value, name),
    fallback: () => true,
    show: (v) => (v ? "on (on a terminal)" : "off"),
  }),
  lockTimeoutMs: setting<number>({
    flags: "--lock-timeout <dur>",
    help: "how long to wait for a lock",
    env: ["MODELSYNC_LOCK_TIMEOUT"],
    config: "lockTimeout",
    defaultText: "60s",
    parse: duration(),
    fallback: () => 60_000,
  }),
  lockTtlMs: setting<number>({
    flags: "--lock-ttl <dur>",
    help: "lease time of a lock, renewed every ttl/3 (100ms to 24h)",
    env: ["MODELSYNC_LOCK_TTL"],
    defaultText: "30s",
    // A record claiming more than 24 h is judged corrupt (lockRecordProblem): never write one.
    parse: duration({ minMs: 100, maxMs: MAX_LOCK_TTL_MS }),
    fallback: () => 30_000,
  }),
  timeoutMs: setting<number | undefined>({
    flags: "--timeout <dur>",
    help: "deadline for the whole run (locks are released, exit 130)",
    env: ["MODELSYNC_TIMEOUT"],
    config: "timeout",
    defaultText: "none",
    parse: duration({ positive: true }),
    fallback: () => undefined,
  }),
  callTimeoutMs: setting<number>({
    flags: "--call-timeout <dur>",
    help: "deadline for each datastore call",
    env: ["MODELSYNC_CALL_TIMEOUT"],
    defaultText: "30s",
    parse: duration({ minMs: 100 }),
    fallback: () => 30_000,
  }),
  jobs: setting<number | undefined>({
    flags: "--jobs <n>",
    help: "parallel transfers",
    env: ["MODELSYNC_JOBS"],
    config: "jobs",
    defaultText: "the datastore's maxConcurrency",
    parse: parseJobs,
    fallback: () => undefined,
  }),
  disableCaps: setting<CapabilityName[]>({
    flags: "--disable-cap <name>",
    help: "force a capability off, e.g. scopedSync (repeatable; comma-separated in the env)",
    env: ["MODELSYNC_DISABLE_CAP"],
    config: "disableCaps",
    defaultText: "none",
    choices: CAPABILITY_NAMES,
    repeatable: true,
    parse: parseCaps,
    fallback: () => [],
    show: (v) => (v.length === 0 ? "none" : v.join(", ")),
  }),
  allowDelete: setting<boolean>({
    flags: "--allow-delete",
    help: "also delete in the datastore every model deleted here (a tombstone for everyone)",
    env: ["MODELSYNC_ALLOW_DELETE"],
    config: "allowDelete",
    defaultText: "off: a model deleted here is pushed only when named",
    commands: ["push", "flush"],
    parse: bool,
    fallback: () => false,
  }),
  holder: setting<string>({
    flags: "--holder <name>",
    help: "name recorded in locks and commits",
    env: ["MODELSYNC_HOLDER"],
    config: "holder",
    defaultText: "$USER, else modelsync",
    parse: parseHolder,
    fallback: (env) => parseHolder(env.USER || env.USERNAME || safeUser(), "user name"),
  }),
} as const satisfies Record<string, SettingSpec<unknown>>;

/** The name of a setting. */
export type SettingName = keyof typeof SETTINGS;

type ValueOf<S> = S extends SettingSpec<infer T> ? T : never;

/** Resolved settings that every command uses. */
export type Settings = { -readonly [K in SettingName]: ValueOf<typeof SETTINGS[K]> };

/** Where each setting came from. */
export type Origins = Record<SettingName, Origin>;

/** The long flag of a spec (`--lock-timeout`), and whether it is a `--no-` flag. */
export function longFlag(spec: SettingSpec<unknown>): { name: string; negate: boolean } {
  const long = spec.flags.split(/[ ,|]+/).find((f) => f.startsWith("--"))!;
  return { name: long, negate: long.startsWith("--no-") };
}

/** The key commander stores a flag under: `--lock-timeout` → `lockTimeout`, `--no-color` → `color`. */
export function flagAttribute(spec: SettingSpec<unknown>): string {
  const { name, negate } = longFlag(spec);
  const bare = name.slice(negate ? 5 : 2);
  return bare.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Resolves every setting once: flag > environment > modelsync.yaml >
 * default. `flags` are the parsed options of the command (commander's
 * `optsWithGlobals()`); `config` is absent before a repository exists.
 */
export function resolveSettings(
  src: { flags: Readonly<Record<string, unknown>>; env: Env; config?: RepoConfig },
): { settings: Settings; origins: Origins } {
  const values: Record<string, unknown> = {};
  const origins: Partial<Origins> = {};
  for (const [name, spec] of Object.entries(SETTINGS) as [SettingName, SettingSpec<unknown>][]) {
    const r = resolveOne(spec, src);
    values[name] = r.value;
    origins[name] = r.origin;
  }
  return { settings: values as Settings, origins: origins as Origins };
}

/** Resolves one setting (before the config file is read, or for an error report). */
export function resolveSetting(
  name: SettingName,
  src: { flags: Readonly<Record<string, unknown>>; env: Env; config?: RepoConfig },
): { value: unknown; origin: Origin } {
  return resolveOne(SETTINGS[name] as SettingSpec<unknown>, src);
}

function resolveOne(
  spec: SettingSpec<unknown>,
  src: { flags: Readonly<Record<string, unknown>>; env: Env; config?: RepoConfig },
): { value: unknown; origin: Origin } {
  const { name: flag, negate } = longFlag(spec);
  const raw = src.flags[flagAttribute(spec)];
  // A `--no-x` flag reads true when absent (commander's default).
  const given = negate ? raw === false : raw !== undefined &&
    !(spec.repeatable && Array.isArray(raw) && raw.length === 0);
  if (given) return { value: spec.parse(raw, flag), origin: { source: "flag", name: flag } };
  for (const name of spec.env ?? []) {
    const text = src.env[name];
    if (text === undefined || text === "") continue;
    const value = spec.fromEnv ? spec.fromEnv(text, name) : spec.parse(text, name);
    if (value !== undefined) return { value, origin: { source: "env", name } };
  }
  if (spec.config !== undefined && src.config !== undefined) {
    const v = src.config[spec.config];
    const inFile = src.config.fileKeys?.includes(spec.config) ?? v !== undefined;
    if (inFile && v !== undefined) {
      return {
        value: spec.configAppliedByLoader ? spec.fallback(src.env) : spec.parse(
          v,
          `${spec.config} in modelsync.yaml`,
        ),
        origin: { source: "file", name: spec.config },
      };
    }
  }
  return { value: spec.fallback(src.env), origin: { source: "default", name: "default" } };
}

/** A setting's value for people: durations as `30s`, lists joined, unset as its default text. */
export function showSetting(name: SettingName, value: unknown): string {
  const spec = SETTINGS[name] as SettingSpec<unknown>;
  if (spec.show) return spec.show(value);
  if (value === undefined) return spec.defaultText;
  if (name.endsWith("Ms") && typeof value === "number") return formatDuration(value);
  if (Array.isArray(value)) return value.join(", ");
  return String(value);
}
