/**
 * Exclude patterns: `.gitignore`-style globs relative to a model directory.
 * Excluded files are never synced (SPEC §3 invariant 6).
 *
 * A pattern compiles to a small nondeterministic automaton that is run over a
 * name or path by tracking the set of live states, so a match costs at most
 * (name length × pattern length) steps whatever the pattern: a backtracking
 * regex would take exponential time on `*a*a*a*a*a*a*a*a*b` against a long run
 * of `a`s, and a blocking regex cannot be interrupted.
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
  glob: Glob;
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

/**
 * Compiles `patterns` (see {@link matchesExclude}) once; recent sets are cached.
 * Throws a SyntaxError for a character class with a range out of order (`[z-a]`).
 */
export function compileExclude(patterns: string[]): ExcludeMatcher {
  const key = patterns.join("\0");
  const hit = compiled.get(key);
  if (hit !== undefined) return hit;
  const rules = patterns.map(compileRule).filter((r): r is Rule => r !== undefined);
  const matchesEntry = (path: string, name: string, isDir: boolean) =>
    rules.some((r) => (!r.dirOnly || isDir) && r.glob.test(r.anchored ? path : name));
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
  return { glob: new Glob(parseGlob(p, pattern)), anchored, dirOnly };
}

/** One element of a parsed glob; the whole glob must match the whole text. */
type Node =
  /** One UTF-16 code unit, literally. */
  | { t: "char"; code: number }
  /** `?`: one code unit other than "/". */
  | { t: "one" }
  /** `[...]` / `[!...]`: one code unit in (or out of) the ranges. */
  | { t: "class"; ranges: number[]; negate: boolean }
  /** `*`: any run without "/". */
  | { t: "star" }
  /** A double star not followed by "/" (or not at a segment start): any run at all. */
  | { t: "any" }
  /** A double star and "/" at a segment start: zero or more `name/` directories. */
  | { t: "dirs" }
  /** `{a,b}`: one of the alternatives. */
  | { t: "alt"; alts: Node[][] };

const SLASH = 0x2f;

/** Parses one glob (or one `{}` alternative); `pattern` is for error messages. */
function parseGlob(glob: string, pattern: string): Node[] {
  const out: Node[] = [];
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") {
      let j = i;
      while (glob[j + 1] === "*") j++;
      if (j > i) {
        const atStart = i === 0 || glob[i - 1] === "/";
        if (atStart && glob[j + 1] === "/") {
          out.push({ t: "dirs" });
          i = j + 1;
        } else {
          out.push({ t: "any" });
          i = j;
        }
      } else {
        out.push({ t: "star" });
      }
    } else if (c === "?") {
      out.push({ t: "one" });
    } else if (c === "[") {
      // The first character after "[" may be "]" itself.
      const end = glob.indexOf("]", i + 2);
      if (end < 0) {
        out.push({ t: "char", code: c.charCodeAt(0) });
        continue;
      }
      let body = glob.slice(i + 1, end);
      const negate = body[0] === "!" || body[0] === "^";
      // A negated class never matches "/": it is the first member, as in the regex
      // `[^/...]` this used to be, so `[!-a]` leaves out the whole range "/"-"a".
      if (negate) body = "/" + body.slice(1);
      out.push({ t: "class", ranges: classRanges(body, pattern), negate });
      i = end;
    } else if (c === "{") {
      const end = glob.indexOf("}", i);
      const inner = end < 0 ? "" : glob.slice(i + 1, end);
      if (end < 0 || inner.includes("{")) {
        out.push({ t: "char", code: c.charCodeAt(0) });
        continue;
      }
      out.push({ t: "alt", alts: inner.split(",").map((alt) => parseGlob(alt, pattern)) });
      i = end;
    } else if (c === "\\" && i + 1 < glob.length) {
      out.push({ t: "char", code: glob.charCodeAt(++i) });
    } else {
      out.push({ t: "char", code: glob.charCodeAt(i) });
    }
  }
  return out;
}

/**
 * The code-unit ranges `[lo, hi, lo, hi, ...]` of a class body: every character
 * is literal, and `x-y` is a range unless the "-" comes first or last.
 */
function classRanges(body: string, pattern: string): number[] {
  const ranges: number[] = [];
  for (let k = 0; k < body.length;) {
    const lo = body.charCodeAt(k);
    if (body[k + 1] === "-" && k + 2 < body.length) {
      const hi = body.charCodeAt(k + 2);
      if (lo > hi) {
        throw new SyntaxError(
          `Invalid exclude pattern ${JSON.stringify(pattern)}: range out of order in ` +
            `character class (${body.slice(k, k + 3)})`,
        );
      }
      ranges.push(lo, hi);
      k += 3;
    } else {
      ranges.push(lo, lo);
      k++;
    }
  }
  return ranges;
}

// State kinds of the automaton. CHAR..CLASS consume one code unit and go to
// `next`; SPLIT goes to both `next` and `alt` without consuming; MATCH accepts.
const CHAR = 0;
const NOT_SLASH = 1;
const ANY = 2;
const CLASS = 3;
const SPLIT = 4;
const MATCH = 5;

/** A set of live automaton states, with its transitions as they are met. */
interface DfaState {
  /** Sorted; never SPLIT states. */
  states: number[];
  match: boolean;
  next: Map<number, DfaState>;
}

/** Bound on the size of one glob's DFA cache (states, their members, transitions). */
const DFA_CACHE_LIMIT = 10_000;

/**
 * A parsed glob as a Thompson NFA. A text is matched by advancing the set of
 * live states one UTF-16 code unit at a time (no backtracking), and the state
 * sets met are cached as a DFA, so a repeated step costs one map lookup.
 */
class Glob {
  readonly #kind: number[] = [];
  /** CHAR: the code unit; CLASS: index into #classes. */
  readonly #arg: number[] = [];
  readonly #next: number[] = [];
  readonly #alt: number[] = [];
  readonly #classes: { ranges: number[]; negate: boolean }[] = [];
  readonly #match: number;
  /** The non-SPLIT states reachable without consuming input from a state entered. */
  readonly #closure: number[][] = [];
  readonly #initial: number[];
  #dfa = new Map<string, DfaState>();
  #dfaSize = 0;
  #start: DfaState;
  /** Per state, the stamp of the step that last added it, to dedupe a state set. */
  readonly #seen: Uint32Array;
  #stamp = 0;

  constructor(nodes: Node[]) {
    this.#match = this.#add(MATCH, 0, -1);
    const start = this.#seq(nodes, this.#match);
    this.#seen = new Uint32Array(this.#kind.length);
    for (let s = 0; s < this.#kind.length; s++) {
      const k = this.#kind[s];
      if (k !== SPLIT && k !== MATCH) this.#closure[this.#next[s]] ??= this.#close(this.#next[s]);
    }
    this.#initial = this.#close(start);
    this.#start = this.#intern(this.#initial);
  }

  /** True when the glob matches all of `text`. */
  test(text: string): boolean {
    let d = this.#start;
    for (let i = 0; i < text.length && d.states.length > 0; i++) {
      const c = text.charCodeAt(i);
      d = d.next.get(c) ?? this.#advance(d, c);
    }
    return d.match;
  }

  #advance(d: DfaState, c: number): DfaState {
    const stamp = this.#nextStamp();
    const set: number[] = [];
    for (const s of d.states) {
      if (!this.#accepts(s, c)) continue;
      for (const t of this.#closure[this.#next[s]]) {
        if (this.#seen[t] !== stamp) {
          this.#seen[t] = stamp;
          set.push(t);
        }
      }
    }
    const to = this.#intern(set.sort((a, b) => a - b));
    d.next.set(c, to);
    this.#dfaSize++;
    return to;
  }

  #intern(states: number[]): DfaState {
    const key = states.join(",");
    const hit = this.#dfa.get(key);
    if (hit !== undefined) return hit;
    if (this.#dfaSize >= DFA_CACHE_LIMIT) {
      this.#dfa = new Map();
      this.#dfaSize = 0;
      this.#start = this.#intern(this.#initial);
    }
    const d: DfaState = { states, match: states.includes(this.#match), next: new Map() };
    this.#dfa.set(key, d);
    this.#dfaSize += 1 + states.length;
    return d;
  }

  #accepts(s: number, c: number): boolean {
    switch (this.#kind[s]) {
      case CHAR:
        return c === this.#arg[s];
      case NOT_SLASH:
        return c !== SLASH;
      case ANY:
        return true;
      case CLASS: {
        const { ranges, negate } = this.#classes[this.#arg[s]];
        let hit = false;
        for (let k = 0; k < ranges.length && !hit; k += 2) {
          hit = ranges[k] <= c && c <= ranges[k + 1];
        }
        return hit !== negate;
      }
      default:
        return false;
    }
  }

  /** The sorted non-SPLIT states reachable from `s` without consuming input. */
  #close(s: number): number[] {
    const stamp = this.#nextStamp();
    const out: number[] = [];
    const stack = [s];
    while (stack.length > 0) {
      const t = stack.pop()!;
      if (this.#seen[t] === stamp) continue;
      this.#seen[t] = stamp;
      if (this.#kind[t] === SPLIT) stack.push(this.#alt[t], this.#next[t]);
      else out.push(t);
    }
    return out.sort((a, b) => a - b);
  }

  #nextStamp(): number {
    if (this.#stamp === 0xffffffff) {
      this.#seen.fill(0);
      this.#stamp = 0;
    }
    return ++this.#stamp;
  }

  #add(kind: number, arg: number, next: number, alt = -1): number {
    this.#kind.push(kind);
    this.#arg.push(arg);
    this.#next.push(next);
    this.#alt.push(alt);
    return this.#kind.length - 1;
  }

  /** Builds `nodes` followed by state `out`; returns the entry state. */
  #seq(nodes: Node[], out: number): number {
    for (let i = nodes.length - 1; i >= 0; i--) out = this.#node(nodes[i], out);
    return out;
  }

  #node(n: Node, out: number): number {
    switch (n.t) {
      case "char":
        return this.#add(CHAR, n.code, out);
      case "one":
        return this.#add(NOT_SLASH, 0, out);
      case "class":
        return this.#add(CLASS, this.#classes.push(n) - 1, out);
      case "star":
      case "any":
        return this.#loop(n.t === "star" ? NOT_SLASH : ANY, out);
      case "dirs": {
        // (?:[^/]*/)*: a loop around "any run without '/', then '/'".
        const loop = this.#add(SPLIT, 0, -1, out);
        this.#next[loop] = this.#loop(NOT_SLASH, this.#add(CHAR, SLASH, loop));
        return loop;
      }
      case "alt": {
        let s = this.#seq(n.alts[n.alts.length - 1], out);
        for (let k = n.alts.length - 2; k >= 0; k--) {
          s = this.#add(SPLIT, 0, this.#seq(n.alts[k], out), s);
        }
        return s;
      }
    }
  }

  /** Zero or more code units accepted by `kind`, then `out`. */
  #loop(kind: number, out: number): number {
    const split = this.#add(SPLIT, 0, -1, out);
    this.#next[split] = this.#add(kind, 0, split);
    return split;
  }
}
