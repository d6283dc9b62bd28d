/**
 * The versions `modelsync --version` and `modelsync version` print:
 * modelsync's own (read from `deno.json`, the one place it is written),
 * Deno's, and the datastore format this version reads and writes.
 *
 * @example
 * ```ts
 * import { versions } from "./version.ts";
 * console.log(versions().modelsync); // e.g. 0.1.0
 * ```
 * @module
 */
import denoJson from "../../deno.json" with { type: "json" };
import { DATASTORE_FORMAT } from "../provider/contract.ts";

/** modelsync's version, from `deno.json`. */
export const MODELSYNC_VERSION: string = denoJson.version;

/** The `version` result. */
export interface Versions {
  schema: "modelsync.version/1";
  modelsync: string;
  deno: string;
  v8: string;
  typescript: string;
  datastoreFormat: number;
}

/** Every version worth reporting in a bug report. */
export function versions(): Versions {
  return {
    schema: "modelsync.version/1",
    modelsync: MODELSYNC_VERSION,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    datastoreFormat: DATASTORE_FORMAT,
  };
}

/** The human lines of {@linkcode versions}. */
export function versionLines(v: Versions = versions()): string[] {
  return [
    `modelsync ${v.modelsync}`,
    `deno ${v.deno} (v8 ${v.v8}, typescript ${v.typescript})`,
    `datastore format ${v.datastoreFormat}`,
  ];
}

/** What `--version` prints. */
export function versionText(): string {
  return versionLines().join("\n");
}
