/**
 * Datastore specs as written on the command line or in `modelsync.yaml`:
 * `filesystem:/path`, `s3://bucket/prefix`, `azure://container/prefix`,
 * `postgres://host/db`, `TYPE:location`, a file URL or a
 * bare path. Only the type is read here; the provider module of that type
 * parses the rest (its `parseSpec`), so provider-specific knowledge stays in
 * `src/providers/`.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { homedir } from "node:os";
import { UsageError } from "../errors.ts";

/**
 * Where the data lives: a provider type and its provider-specific keys, or
 * a `spec` string its provider module parses (relative paths against
 * `baseDir`).
 */
export interface DatastoreConfig {
  type: string;
  /** A spec string, parsed by the provider module when it is created. */
  spec?: string;
  /** The directory relative paths in `spec` are relative to. */
  baseDir?: string;
  [key: string]: unknown;
}

const SPEC_HELP = "Use filesystem:/path, a plain path, s3://bucket/prefix, " +
  "azure://container/prefix or postgres://host/db.";

/**
 * Reads the type of a datastore spec. URL-like specs (`s3://…`) name their
 * type by scheme; `TYPE:rest` names it before the colon (`fs` is
 * `filesystem`); anything else (a path, a `file://` URL) is a filesystem.
 *
 * @example
 * ```ts
 * import { parseDatastoreSpec } from "./datastore_spec.ts";
 * parseDatastoreSpec("s3://bucket/team", "/repo").type; // "s3"
 * parseDatastoreSpec("store", "/repo").type; // "filesystem"
 * ```
 */
export function parseDatastoreSpec(
  spec: string,
  baseDir: string,
  /** Where the spec came from, for messages: `--datastore`, `MODELSYNC_DATASTORE`, … */
  what = "datastore",
): DatastoreConfig {
  const text = spec.trim();
  if (text === "") throw new UsageError(`Invalid ${what} "": it is empty. ${SPEC_HELP}`);
  const m = /^([a-z][a-z0-9+.-]*):(\/\/)?/i.exec(text);
  let type = "filesystem";
  if (m !== null && m[1].length > 1) {
    type = m[1].toLowerCase();
    if (type === "fs" || type === "file") type = "filesystem";
    if (type === "postgresql") type = "postgres";
  }
  return { type, spec: text, baseDir };
}

/** A spec fit for messages: no user info, query or fragment (either may hold secrets). */
export function redactSpec(spec: string): string {
  // Up to the last "@" before a query: a password may itself hold a "/".
  return spec.replace(/#.*$/, "").replace(/\/\/[^?]*@/, "//***@").replace(/\?.*$/, "?***");
}

/** Resolves a local path against `baseDir` (`~/` against the home directory). */
export function localPath(path: string, baseDir: string): string {
  if (path === "~" || path.startsWith("~/")) return join(homedir(), path.slice(1));
  return resolve(baseDir, path);
}
