/**
 * The one rule for which paths inside a model directory can be synced (SPEC
 * §3 invariants 4, 6 and 9). {@linkcode syncablePathProblem} is what readers
 * of manifests, base files and landing journals check, and
 * {@linkcode nameProblem} is the same rule for one name, which the scanner
 * applies to every directory entry: a path the scanner would never sync is
 * exactly a path a reader refuses. A file of its own, free of heavy imports,
 * so the scan workers load little.
 *
 * @example
 * ```ts
 * import { syncablePathProblem } from "./path.ts";
 * console.log(syncablePathProblem("data/a.json")); // undefined
 * console.log(syncablePathProblem("../x")); // it has a '.' or '..' segment
 * console.log(syncablePathProblem("sub/.modelsync/base")); // it has a .modelsync segment (local state, never synced)
 * ```
 * @module
 */

/** Longest path, in UTF-8 bytes. */
export const MAX_PATH_BYTES = 1024;
/** The name of modelsync's local state directory; never synced at any depth. */
export const STATE_DIR = ".modelsync";
const encoder = new TextEncoder();

/**
 * Explains why a path could escape its model directory or is not canonical
 * (SPEC §3 invariant 4), or returns undefined. It does not apply the rules
 * of what is synced; use {@linkcode syncablePathProblem} for paths in a model.
 */
export function pathProblem(path: string): string | undefined {
  return pathShapeProblem(path) ?? segmentsProblem(path, false);
}

/**
 * Explains why `path`, relative to a model directory, can never be synced,
 * or returns undefined when it can: everything {@linkcode pathProblem}
 * refuses, a `.modelsync` segment, and text that is not well-formed Unicode
 * (a lone surrogate has no file name). A manifest or base naming such a path
 * is corrupt. Allocation-free: it runs once per file of every base read.
 */
export function syncablePathProblem(path: string): string | undefined {
  return pathShapeProblem(path) ??
    (path.isWellFormed() ? undefined : "it is not well-formed Unicode") ??
    segmentsProblem(path, true);
}

/**
 * {@linkcode syncablePathProblem} for one directory entry's name: why an
 * entry with this name is never synced, or undefined. The scanner calls it
 * for every entry; together with the whole-path checks of
 * {@linkcode syncablePathProblem} (length, a drive letter at the top) it is
 * the same rule.
 */
export function nameProblem(name: string): string | undefined {
  if (name.includes("\0")) return "it contains NUL";
  if (name.includes("\\")) return "it contains a backslash";
  return segmentProblem(name, 0, name.length, true);
}

/** True when the path needs the whole-path checks a name alone cannot answer. */
export function needsPathCheck(path: string, top: boolean): boolean {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short paths are short enough.
  return path.length * 3 > MAX_PATH_BYTES || (top && path.charCodeAt(1) === 58);
}

function pathShapeProblem(path: string): string | undefined {
  if (path.length === 0) return "it is empty";
  if (path.length * 3 > MAX_PATH_BYTES && encoder.encode(path).length > MAX_PATH_BYTES) {
    return "it is over 1024 bytes";
  }
  if (path.includes("\0")) return "it contains NUL";
  if (path.includes("\\")) return "it contains a backslash";
  if (path.charCodeAt(0) === 47) return "it is absolute";
  if (isLetter(path.charCodeAt(0)) && path.charCodeAt(1) === 58) return "it has a drive letter";
  return undefined;
}

function isLetter(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function segmentsProblem(path: string, syncable: boolean): string | undefined {
  let start = 0;
  for (;;) {
    const slash = path.indexOf("/", start);
    const end = slash === -1 ? path.length : slash;
    const problem = segmentProblem(path, start, end, syncable);
    if (problem !== undefined || slash === -1) return problem;
    start = slash + 1;
  }
}

/**
 * The rule for one segment `s[start, end)`, without slicing it out (positional
 * arguments: it runs for every name of every scan and every base read).
 */
function segmentProblem(
  s: string,
  start: number,
  end: number,
  syncable: boolean,
): string | undefined {
  const n = end - start;
  if (n === 0) return "it has an empty segment";
  if (n > STATE_DIR.length || s.charCodeAt(start) !== 46) return undefined; // not "."-led
  if (n === 1 || (n === 2 && s.charCodeAt(start + 1) === 46)) {
    return "it has a '.' or '..' segment";
  }
  if (syncable && n === STATE_DIR.length && s.startsWith(STATE_DIR, start)) {
    return "it has a .modelsync segment (local state, never synced)";
  }
  return undefined;
}

const SEP = Deno.build.os === "windows" ? "\\" : "/";

/**
 * `dir` joined with `rel`, where `dir` is already normal (as `path.join` or
 * `path.resolve` return it) and `rel` is canonical (one
 * {@linkcode pathProblem} accepts: "/"-separated names, none empty, "." or
 * ".."), so nothing needs normalising. Gives what `path.join(dir, rel)`
 * gives, without its normalising pass, which allocated about 1.5 KB per
 * call: a first push joined twice per file, about 150 MiB of garbage for
 * 100,000 files.
 */
export function joinRel(dir: string, rel: string): string {
  const r = SEP === "/" ? rel : rel.replaceAll("/", SEP);
  return dir.endsWith(SEP) ? dir + r : dir + SEP + r;
}
