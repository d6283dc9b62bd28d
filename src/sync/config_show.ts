/**
 * `config show`: every setting in effect and where it came from (a flag, an
 * environment variable, modelsync.yaml or the default), then the other keys
 * of modelsync.yaml. Built from the tables (`SETTINGS`, `CONFIG_KEYS`), so a
 * new option shows up here by itself. Opens no datastore.
 *
 * @module
 */
import { CONFIG_KEYS, type ConfigKey } from "../repo/config.ts";
import { type DatastoreConfig, redactSpec } from "../repo/datastore_spec.ts";
import type { Workspace } from "./session.ts";
import {
  type SettingName,
  SETTINGS,
  type SettingSource,
  type SettingSpec,
  showSetting,
} from "./settings.ts";

/** One row of `config show`. */
export interface ConfigRow {
  /** The setting or key, e.g. `lockTimeout`. */
  name: string;
  /** As people read it: `60s`, `filesystem:/srv/models`. */
  value: string;
  source: SettingSource;
  /** The flag, environment variable or file key it came from; `default` for a default. */
  from: string;
}

/** The `config show` result. */
export interface ConfigShowResult {
  schema: "modelsync.config/1";
  /** The repository, or null outside one. */
  repo: string | null;
  settings: ConfigRow[];
}

/** The datastore for people: its spec without user info, query or fragment (credentials). */
function showDatastore(ds: DatastoreConfig): string {
  if (typeof ds.spec === "string") return redactSpec(ds.spec);
  return `a ${ds.type} datastore (configured as a mapping)`;
}

/** Output name of a setting: its file key where it has one, else the flag's name. */
function rowName(name: SettingName): string {
  const spec = SETTINGS[name] as SettingSpec<unknown>;
  return spec.config ?? name.replace(/Ms$/, "");
}

/** Collects the rows. */
export function configShow(w: Workspace): ConfigShowResult {
  const rows: ConfigRow[] = [];
  const covered = new Set<string>();
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const spec = SETTINGS[name] as SettingSpec<unknown>;
    if (spec.config !== undefined) covered.add(spec.config);
    const origin = w.origins[name];
    let value = showSetting(name, w.settings[name]);
    if (name === "datastore" && w.datastore !== undefined) value = showDatastore(w.datastore);
    if (name === "repo") value = w.repoDir ?? "(none: not inside a repository)";
    if (name === "jobs" && w.settings.jobs === undefined) value = spec.defaultText;
    rows.push({ name: rowName(name), value, source: origin.source, from: origin.name });
  }
  for (const key of Object.keys(CONFIG_KEYS) as ConfigKey[]) {
    if (covered.has(key)) continue;
    const inFile = w.config?.fileKeys?.includes(key) ?? false;
    const v = w.config?.[key];
    const value = Array.isArray(v)
      ? (v.length === 0 ? "[]" : v.join(", "))
      : v === undefined
      ? (key === "models" ? "every model" : CONFIG_KEYS[key].template.value)
      : String(v);
    rows.push({
      name: key,
      value,
      source: inFile ? "file" : "default",
      from: inFile ? key : "default",
    });
  }
  return { schema: "modelsync.config/1", repo: w.repoDir ?? null, settings: rows };
}

/** Human lines: name, value, and where it came from, in aligned columns. */
export function formatConfigShow(r: ConfigShowResult): string[] {
  const where = (row: ConfigRow) =>
    row.source === "default"
      ? "default"
      : row.source === "file"
      ? `modelsync.yaml (${row.from})`
      : row.source === "env"
      ? `environment (${row.from})`
      : `flag (${row.from})`;
  const nameW = Math.max(...r.settings.map((s) => s.name.length));
  const valueW = Math.max(...r.settings.map((s) => s.value.length));
  return r.settings.map((s) =>
    `${s.name.padEnd(nameW)}  ${s.value.padEnd(valueW)}  ${where(s)}`.trimEnd()
  );
}
