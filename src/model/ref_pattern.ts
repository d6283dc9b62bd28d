/**
 * Model ref patterns, as `models:` in `modelsync.yaml` lists them: a ref
 * (`vision/resnet`) or a glob over refs, where `*` matches within one segment,
 * `?` one character of a segment and `**` any number of segments.
 *
 * @example
 * ```ts
 * import { matchesRefPatterns } from "./ref_pattern.ts";
 * console.log(matchesRefPatterns("vision/resnet", ["vision/*"])); // true
 * console.log(matchesRefPatterns("@acme/nlp/bert", ["vision/*"])); // false
 * ```
 * @module
 */
import { refProblem } from "./ref.ts";

const PATTERN_CHARS = /^[A-Za-z0-9._@*?/-]+$/;

/** Explains why `text` is neither a ref nor a ref glob, or returns undefined. */
export function refPatternProblem(text: string): string | undefined {
  if (text.length === 0) return "it is empty";
  if (!/[*?]/.test(text)) return refProblem(text);
  if (!PATTERN_CHARS.test(text)) {
    return "it may hold only letters, digits, . _ - @ / and the wildcards * ? **";
  }
  const segs = text.split("/");
  if (segs.some((s) => s === "" || s === "." || s === "..")) {
    return "it has an empty, '.' or '..' segment";
  }
  if (segs.some((s) => s.includes("**") && s !== "**")) return "** must be a whole segment";
  if (!segs.includes("**") && (segs.length < 2 || segs.length > 3)) {
    return "it has the wrong number of segments (TYPE/ID or @scope/name/ID)";
  }
  return undefined;
}

const cache = new Map<string, RegExp>();

function compile(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (re !== undefined) return re;
  const body = pattern.split("/").map((seg) => {
    if (seg === "**") return "(?:[^/]+(?:/[^/]+)*)";
    return seg.replace(/[.+^${}()|[\]\\-]/g, "\\$&").replace(/\*/g, "[^/]*").replace(
      /\?/g,
      "[^/]",
    );
  }).join("/");
  re = new RegExp(`^${body}$`);
  cache.set(pattern, re);
  return re;
}

/** True when the ref (printed `type/id`) matches one of the patterns. */
export function matchesRefPatterns(ref: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => compile(p).test(ref));
}
