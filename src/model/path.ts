/**
 * The safety check of a path inside a model directory (SPEC §3 invariant 4).
 * A file of its own, free of heavy imports, so the scan workers load little.
 *
 * @example
 * ```ts
 * import { pathProblem } from "./path.ts";
 * console.log(pathProblem("data/a.json")); // undefined
 * console.log(pathProblem("../x")); // it has a '.' or '..' segment
 * ```
 * @module
 */

/** Longest path, in UTF-8 bytes. */
const MAX_PATH_BYTES = 1024;
const encoder = new TextEncoder();

/**
 * Explains why a manifest path could escape or is not canonical, or returns
 * undefined when it is safe (SPEC §3 invariant 4).
 */
export function pathProblem(path: string): string | undefined {
  if (path.length === 0) return "it is empty";
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short paths need no encoding.
  if (path.length * 3 > MAX_PATH_BYTES && encoder.encode(path).length > MAX_PATH_BYTES) {
    return "it is over 1024 bytes";
  }
  if (path.includes("\0")) return "it contains NUL";
  if (path.includes("\\")) return "it contains a backslash";
  if (path.startsWith("/")) return "it is absolute";
  if (/^[A-Za-z]:/.test(path)) return "it has a drive letter";
  for (const seg of path.split("/")) {
    if (seg === "") return "it has an empty segment";
    if (seg === "." || seg === "..") return "it has a '.' or '..' segment";
  }
  return undefined;
}
