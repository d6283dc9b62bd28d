/**
 * Exclude patterns: `.gitignore`-style globs relative to a model directory.
 * Excluded files are never synced (SPEC §3 invariant 6).
 *
 * @module
 */
/** A compiled set of exclude patterns. */
export interface ExcludeMatcher {
  isEmpty: boolean;
  /** One walk entry; its parent directories were already checked. */
  matchesEntry(path: string, name: string, isDir: boolean): boolean;
  /** A file path, checking every parent directory too. */
  matchesPath(path: string): boolean;
}

interface Rule {
  re: RegExp;
  /** Matches the whole relative path (the pattern had a "/"), else the name. */
  anchored: boolean;
  /** Matches directories only (trailing "/" or "/**"). */
  dirOnly: boolean;
}

const compiled = new Map<string, ExcludeMatcher>();

/**
 * True when `path` (relative to the model directory, `/`-separated) is
 * excluded by one of `patterns`. Patterns are globs as in `.gitignore`: one
 * without "/" matches a name at any depth (`*.tmp`); one with "/" matches the
 * whole relative path (`data/*.bin`, or `__pycache__` at any depth when
 * written with a leading and a trailing double star); a leading "/" only
 * anchors; a trailing "/" matches directories only; a matching directory
 * excludes everything under it. `*` and `?` never cross "/", a double star
 * does; `[abc]`, `[!abc]` and `{a,b}` work; `*` matches dotfiles too.
 *
 * @example
 * ```ts
 * import { matchesExclude } from "./exclude.ts";
 * matchesExclude("deep/dir/file.tmp", ["*.tmp"]); // true
 * matchesExclude("src/cache/blob.bin", ["cache/"]); // true
 * matchesExclude("data/keep.bin", ["/keep.bin"]); // false
 * ```
 */
export function matchesExclude(path: string, patterns: string[]): boolean {
  return compileExclude(patterns).matchesPath(path);
}

export function compileExclude(patterns: string[]): ExcludeMatcher {
  const key = patterns.join("\0");
  const hit = compiled.get(key);
  if (hit !== undefined) return hit;
  const rules = patterns.map(compileRule).filter((r): r is Rule => r !== undefined);
  const matchesEntry = (path: string, name: string, isDir: boolean) =>
    rules.some((r) => (!r.dirOnly || isDir) && r.re.test(r.anchored ? path : name));
  const matcher: ExcludeMatcher = {
    isEmpty: rules.length === 0,
    matchesEntry,
    matchesPath(path) {
      if (rules.length === 0) return false;
      const segs = path.split("/");
      let prefix = "";
      for (let i = 0; i < segs.length; i++) {
        prefix = i === 0 ? segs[0] : `${prefix}/${segs[i]}`;
        if (matchesEntry(prefix, segs[i], i < segs.length - 1)) return true;
      }
      return false;
    },
  };
  if (compiled.size > 64) compiled.clear();
  compiled.set(key, matcher);
  return matcher;
}

function compileRule(pattern: string): Rule | undefined {
  let p = pattern.trim().replace(/^(\.\/)+/, "");
  let anchored = false;
  let dirOnly = false;
  if (p.startsWith("/")) {
    anchored = true;
    p = p.replace(/^\/+/, "");
  }
  if (p.endsWith("/")) {
    dirOnly = true;
    p = p.replace(/\/+$/, "");
  }
  if (p.endsWith("/**") && p.length > 3) {
    // "dir/**" excludes everything under dir: exclude dir itself and skip the walk.
    anchored = true;
    dirOnly = true;
    p = p.slice(0, -3);
  }
  if (p === "") return undefined;
  if (p.includes("/")) anchored = true;
  return { re: new RegExp(`^${globToRegex(p)}$`, "s"), anchored, dirOnly };
}

/** Translates one glob into a regex body (no anchors). */
function globToRegex(glob: string): string {
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") {
      let j = i;
      while (glob[j + 1] === "*") j++;
      if (j > i) {
        const atStart = i === 0 || glob[i - 1] === "/";
        if (atStart && glob[j + 1] === "/") {
          out += "(?:[^/]*/)*"; // "**/": zero or more directories
          i = j + 1;
        } else {
          out += ".*";
          i = j;
        }
      } else {
        out += "[^/]*";
      }
    } else if (c === "?") {
      out += "[^/]";
    } else if (c === "[") {
      const end = glob.indexOf("]", i + 2);
      if (end < 0) {
        out += "\\[";
        continue;
      }
      let body = glob.slice(i + 1, end);
      const negate = body[0] === "!" || body[0] === "^";
      if (negate) body = body.slice(1);
      body = body.replace(/[\\\]^]/g, (m) => `\\${m}`);
      out += negate ? `[^/${body}]` : `[${body}]`;
      i = end;
    } else if (c === "{") {
      const end = glob.indexOf("}", i);
      const inner = end < 0 ? "" : glob.slice(i + 1, end);
      if (end < 0 || inner.includes("{")) {
        out += "\\{";
        continue;
      }
      out += `(?:${inner.split(",").map(globToRegex).join("|")})`;
      i = end;
    } else if (c === "\\" && i + 1 < glob.length) {
      out += escapeRegex(glob[++i]);
    } else {
      out += escapeRegex(c);
    }
  }
  return out;
}

function escapeRegex(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}
