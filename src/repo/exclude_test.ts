import assert from "node:assert/strict";
import { compileExclude, matchesExclude } from "./exclude.ts";

/** A guard against exponential blow-up, not a timing target. */
const FAST_MS = 500;

Deno.test("exclude matching stays polynomial on patterns that make a regex backtrack", () => {
  const cases: [path: string, pattern: string, expected: boolean][] = [
    ["a".repeat(60), "*a*a*a*a*a*a*a*a*b", false],
    ["a".repeat(60) + "b", "*a*a*a*a*a*a*a*a*b", true],
    ["a".repeat(1000), "*a".repeat(20) + "*b", false],
    ["a".repeat(1000), "*a".repeat(20) + "*", true],
    ["d/" + "a".repeat(1000), "d/" + "*a".repeat(20) + "*b", false],
    ["a".repeat(1000), "**a".repeat(20) + "**b", false],
    ["a/".repeat(300) + "c", "**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/b", false],
    ["a/".repeat(300) + "b", "**/a/**/a/**/a/**/a/**/a/**/a/**/a/**/b", true],
    ["a".repeat(300), "{a,aa,*a}".repeat(15) + "b", false],
    ["ab".repeat(500), "*[ab]?".repeat(20) + "c", false],
  ];
  for (const [path, pattern, expected] of cases) {
    const t0 = performance.now();
    assert.equal(matchesExclude(path, [pattern]), expected, pattern);
    const ms = performance.now() - t0;
    assert.ok(ms < FAST_MS, `${pattern} took ${ms.toFixed(0)} ms`);
  }
});

Deno.test("matchesExclude keeps the .gitignore-like semantics", () => {
  const cases: [pattern: string, path: string, expected: boolean][] = [
    // No "/": a name at any depth; "*" matches dotfiles.
    ["*.tmp", "a.tmp", true],
    ["*.tmp", "deep/dir/a.tmp", true],
    ["*.tmp", ".hidden.tmp", true],
    ["*.tmp", "a.tmpx", false],
    ["*.tmp", "a.TMP", false],
    ["*", ".env", true],
    [".*", ".env", true],
    [".*", "env", false],
    ["cache", "cache", true],
    ["cache", "x/cache/y", true],
    ["cache", "cached", false],
    [" *.tmp ", "a.tmp", true],
    // A "/" anywhere but the end: the whole relative path.
    ["data/*.bin", "data/a.bin", true],
    ["data/*.bin", "x/data/a.bin", false],
    ["data/*.bin", "data/sub/a.bin", false],
    ["data/*.bin", "data/a.bin/inner", true],
    // A leading "/" only anchors.
    ["/keep.bin", "keep.bin", true],
    ["/keep.bin", "d/keep.bin", false],
    ["/a/b", "a/b", true],
    ["/a/b", "x/a/b", false],
    // A trailing "/": directories only, everything under them.
    ["build/", "build/out.o", true],
    ["build/", "src/build/out.o", true],
    ["build/", "build", false],
    ["build/", "build.txt", false],
    ["logs", "logs/today.log", true],
    // "*" and "?" never cross "/", a double star does.
    ["d/a*b", "d/axxb", true],
    ["d/a*b", "d/a/b", false],
    ["d/a?b", "d/a/b", false],
    ["d/a**b", "d/a/x/b", true],
    ["?.txt", "f.txt", true],
    ["?.txt", "ab.txt", false],
    ["?.txt", ".txt", false],
    // Double star at the start, in the middle, at the end.
    ["**/*.tmp", "x.tmp", true],
    ["**/*.tmp", "a/b/x.tmp", true],
    ["**/cache", "cache", true],
    ["**/cache", "a/b/cache/f", true],
    ["**/cache", "a/b/cached", false],
    ["a/**/b", "a/b", true],
    ["a/**/b", "a/x/b", true],
    ["a/**/b", "a/x/y/b", true],
    ["a/**/b", "a/b/c", true],
    ["a/**/b", "ab", false],
    ["a/**/b", "x/a/b", false],
    ["a/**/b", "a/xb", false],
    ["logs/**", "logs/x", true],
    ["logs/**", "logs/a/b", true],
    ["logs/**", "logs", false],
    ["logs/**", "x/logs/y", false],
    ["**/__pycache__/**", "x/__pycache__/m.pyc", true],
    ["**/__pycache__/**", "__pycache__/m.pyc", true],
    ["**/__pycache__/**", "__pycache__", false],
    ["data/**/*.bin", "data/a.bin", true],
    ["data/**/*.bin", "data/s/t/a.bin", true],
    ["**", "anything/at/all", true],
    // Classes.
    ["file[0-9]", "file1", true],
    ["file[0-9]", "filex", false],
    ["file[!0-9]", "filex", true],
    ["file[!0-9]", "file1", false],
    ["file[^0-9]", "filex", true],
    ["[abc].txt", "b.txt", true],
    ["[abc].txt", "d.txt", false],
    ["d/x[!a]y", "d/x/y", false],
    ["[]]", "]", true],
    ["[a-]", "-", true],
    ["x[", "x[", true],
    // Braces.
    ["*.{tmp,bak}", "a.bak", true],
    ["*.{tmp,bak}", "a.tmp", true],
    ["*.{tmp,bak}", "a.log", false],
    ["{a,b}/*.bin", "b/x.bin", true],
    ["{a,b}/*.bin", "c/x.bin", false],
    ["a{,.old}", "a", true],
    ["a{,.old}", "a.old", true],
    ["a{b", "a{b", true],
    // Escapes and characters special in a regex.
    ["a\\?b", "a?b", true],
    ["a\\?b", "axb", false],
    ["\\*", "*", true],
    ["\\*", "x", false],
    ["\\[x]", "[x]", true],
    ["\\[x]", "x", false],
    ["\\{a,b}", "{a,b}", true],
    ["\\{a,b}", "a", false],
    ["a+b(c).txt", "a+b(c).txt", true],
    ["a.txt", "abtxt", false],
    ["^$|", "^$|", true],
  ];
  for (const [pattern, path, expected] of cases) {
    assert.equal(matchesExclude(path, [pattern]), expected, `${pattern} on ${path}`);
  }
  assert.ok(matchesExclude("a.bak", ["*.tmp", "*.bak"]));
  assert.ok(!matchesExclude("a.log", ["*.tmp", "*.bak"]));
});

Deno.test("compileExclude: isEmpty, matchesEntry, the cache, bad classes", () => {
  assert.ok(compileExclude([]).isEmpty);
  assert.ok(compileExclude(["", "  ", "/", "./"]).isEmpty);
  assert.ok(!compileExclude(["*.tmp"]).isEmpty);
  assert.equal(compileExclude(["*.tmp", "x/"]), compileExclude(["*.tmp", "x/"]));
  const m = compileExclude(["build/", "*.tmp", "/top", "data/*.bin"]);
  assert.ok(m.matchesEntry("src/build", "build", true));
  assert.ok(!m.matchesEntry("src/build", "build", false));
  assert.ok(m.matchesEntry("a/b.tmp", "b.tmp", false));
  assert.ok(m.matchesEntry("top", "top", false));
  assert.ok(!m.matchesEntry("a/top", "top", false));
  assert.ok(m.matchesEntry("data/x.bin", "x.bin", false));
  assert.ok(!m.matchesEntry("x.bin", "x.bin", false));
  assert.ok(m.matchesPath("src/build/deep/file"));
  assert.ok(!m.matchesPath("src/builder/file"));
  assert.throws(() => compileExclude(["[z-a]"]), SyntaxError);
});

// The regex translation modelsync used before the automaton (exponential on some
// patterns, so only fed short ones here): the reference for the exact semantics.
function referenceRegex(
  pattern: string,
): { re: RegExp; anchored: boolean; dirOnly: boolean } | null {
  let p = pattern.trim().replace(/^(\.\/)+/, "");
  let anchored = false;
  let dirOnly = false;
  if (p.startsWith("/")) [anchored, p] = [true, p.replace(/^\/+/, "")];
  if (p.endsWith("/")) [dirOnly, p] = [true, p.replace(/\/+$/, "")];
  if (p.endsWith("/**") && p.length > 3) [anchored, dirOnly, p] = [true, true, p.slice(0, -3)];
  if (p === "") return null;
  if (p.includes("/")) anchored = true;
  return { re: new RegExp(`^${globToRegex(p)}$`, "s"), anchored, dirOnly };
}

function globToRegex(glob: string): string {
  const esc = (c: string) => /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") {
      let j = i;
      while (glob[j + 1] === "*") j++;
      if (j > i && (i === 0 || glob[i - 1] === "/") && glob[j + 1] === "/") {
        out += "(?:[^/]*/)*";
        i = j + 1;
      } else {
        out += j > i ? ".*" : "[^/]*";
        i = j;
      }
    } else if (c === "?") {
      out += "[^/]";
    } else if (c === "[" && glob.indexOf("]", i + 2) >= 0) {
      const end = glob.indexOf("]", i + 2);
      let body = glob.slice(i + 1, end);
      const negate = body[0] === "!" || body[0] === "^";
      if (negate) body = body.slice(1);
      body = body.replace(/[\\\]^]/g, (m) => `\\${m}`);
      out += negate ? `[^/${body}]` : `[${body}]`;
      i = end;
    } else if (
      c === "{" && glob.indexOf("}", i) >= 0 &&
      !glob.slice(i + 1, glob.indexOf("}", i)).includes("{")
    ) {
      const end = glob.indexOf("}", i);
      out += `(?:${glob.slice(i + 1, end).split(",").map(globToRegex).join("|")})`;
      i = end;
    } else if (c === "\\" && i + 1 < glob.length) {
      out += esc(glob[++i]);
    } else {
      out += esc(c);
    }
  }
  return out;
}

Deno.test("matchesExclude agrees with the former regex translation on random short globs", () => {
  let seed = 20240611;
  const rnd = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
  const pick = (xs: string[]) => xs[rnd(xs.length)];
  const tokens = ["a", "b", "/", "*", "*", "**", "**/", "/**", "?", "[", "]", "!", "^", "-", "{"];
  tokens.push("}", ",", "\\", ".", " ", "./", "[a-c]", "[!a]", "{a,b}", "[z-a]", "[!-a]");
  const chars = ["a", "b", "c", "z", "/", ".", "-", "!", "\\", "[", "]", "{", "}", ",", "^", "*"];
  chars.push("?", "\n", "😀");
  let compared = 0;
  for (let iter = 0; iter < 3000; iter++) {
    let pattern = "";
    for (let n = rnd(9); n > 0; n--) pattern += pick(tokens);
    let ref: ReturnType<typeof referenceRegex>;
    try {
      ref = referenceRegex(pattern);
    } catch {
      assert.throws(() => compileExclude([pattern]), SyntaxError, pattern);
      continue;
    }
    const m = compileExclude([pattern]);
    assert.equal(m.isEmpty, ref === null, pattern);
    if (ref === null) continue;
    for (let k = 0; k < 8; k++) {
      // Half random text, half the pattern with its wildcards filled in.
      let path = "";
      if (k % 2 === 0) {
        for (let n = rnd(9); n > 0; n--) path += pick(chars);
      } else {
        for (const c of pattern.replace(/^[./]+/, "")) {
          if (c === "*") { for (let n = rnd(4); n > 0; n--) path += pick(chars); }
          else if (c === "?" || rnd(8) === 0) path += pick(chars);
          else if (!"[]{},!^\\".includes(c) || rnd(2) === 0) path += c;
        }
      }
      const name = path.slice(path.lastIndexOf("/") + 1);
      for (const isDir of [false, true]) {
        const want: boolean = (!ref.dirOnly || isDir) && ref.re.test(ref.anchored ? path : name);
        const msg = `${JSON.stringify(pattern)} on ${JSON.stringify(path)} (dir: ${isDir})`;
        assert.equal(m.matchesEntry(path, name, isDir), want, msg);
        compared++;
      }
    }
  }
  assert.ok(compared > 10_000, `only ${compared} comparisons`);
});
