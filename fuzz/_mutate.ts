/**
 * Mutators for the fuzzer: structure-aware changes to JSON values (the
 * records a datastore or `.modelsync/` holds) and byte-level changes to text
 * (YAML, JSON, specs), both drawing on lists of values known to break parsers:
 * escaping paths, huge numbers, wrong types, control characters.
 *
 * @example
 * ```ts
 * import { Rng } from "./_rng.ts";
 * import { mutateJson, mutateText } from "./_mutate.ts";
 * const rng = new Rng(1);
 * console.log(JSON.stringify(mutateJson(rng, { a: 1 })), mutateText(rng, "a: 1"));
 * ```
 * @module
 */
import type { Rng } from "./_rng.ts";

/** Path-like strings that must never be trusted. */
export const NASTY_PATHS: readonly string[] = [
  "..",
  "../x",
  "a/../../x",
  "/etc/passwd",
  "a//b",
  "a/./b",
  "./a",
  "a/",
  "/",
  "",
  ".",
  ".modelsync/base/x",
  "a/.modelsync/b",
  "a\\..\\b",
  "C:/x",
  "c:",
  "a\u0000b",
  "\u0000",
  "x".repeat(1100),
  `${"d/".repeat(300)}f`,
  "é/ü.bin",
  "\ud800",
  "a\nb",
  " ",
  "~",
  "~/x",
  "%2e%2e/x",
  "CON",
  "a:b",
];

/** Strings for any text field. */
export const NASTY_STRINGS: readonly string[] = [
  ...NASTY_PATHS,
  "global",
  "vpc/m1",
  "a/b/c/d",
  "@scope/name/id",
  "@/x",
  "Z".repeat(70),
  "1970-01-01T00:00:00.000Z",
  "2999-01-01T00:00:00.000Z",
  "not a date",
  "-1",
  "1e999",
  "NaN",
  "0".repeat(64),
  "f".repeat(64),
  "F".repeat(64),
  "true",
  "null",
  "{}",
  "\u202e",
  "\ufeff",
  "\u001b[31m",
];

/** Numbers at and past every edge. */
export const NASTY_NUMBERS: readonly number[] = [
  0,
  -0,
  1,
  -1,
  2,
  0.5,
  -0.5,
  255,
  256,
  65536,
  2 ** 31,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 53 + 2,
  999_999_999_999,
  1_000_000_000_000,
  86_400_000,
  86_400_001,
  1e308,
  -1e308,
  Number.MIN_VALUE,
];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A value of any JSON type, often a nasty one. */
export function nastyValue(rng: Rng, depth = 0): Json {
  switch (rng.int(depth > 2 ? 5 : 7)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick(NASTY_NUMBERS);
    case 3:
    case 4:
      return rng.pick(NASTY_STRINGS);
    case 5:
      return Array.from({ length: rng.int(4) }, () => nastyValue(rng, depth + 1));
    default: {
      const o: Record<string, Json> = {};
      for (let i = rng.int(4); i > 0; i--) {
        // defineProperty: "__proto__" becomes a plain key, as JSON.parse makes it.
        Object.defineProperty(o, rng.pick(["a", "path", "x", "__proto__"]), {
          value: nastyValue(rng, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return o;
    }
  }
}

/** Every path to a node of `v` (object keys and array indices), the root first. */
function nodes(v: Json, at: (string | number)[] = [], out: (string | number)[][] = []) {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => nodes(x, [...at, i], out));
  else if (v !== null && typeof v === "object") {
    for (const k of Object.keys(v)) nodes(v[k], [...at, k], out);
  }
  return out;
}

function getAt(v: Json, at: (string | number)[]): Json {
  let cur = v;
  for (const k of at) cur = (cur as Record<string | number, Json>)[k];
  return cur;
}

/**
 * Applies one to three structural mutations to a copy of `value`: a node
 * replaced by a nasty value or by a similar value of another type, a key
 * removed or added, an array entry duplicated or dropped.
 */
export function mutateJson<T>(rng: Rng, value: T): Json {
  let root = structuredClone(value) as Json;
  for (let n = 1 + rng.int(2); n > 0; n--) {
    const all = nodes(root);
    const at = rng.pick(all);
    const node = getAt(root, at);
    const parentPath = at.slice(0, -1);
    const key = at[at.length - 1];
    const parent = at.length === 0
      ? null
      : getAt(root, parentPath) as Record<string | number, Json>;
    const op = rng.int(7);
    if (op <= 2 || parent === null) {
      const replacement = op === 0 && typeof node === "string"
        ? node + rng.pick(NASTY_STRINGS)
        : op === 1 && typeof node === "number"
        ? rng.pick(NASTY_NUMBERS)
        : nastyValue(rng);
      if (parent === null) root = replacement;
      else parent[key] = replacement;
    } else if (op === 3) {
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key];
    } else if (op === 4 && node !== null && typeof node === "object" && !Array.isArray(node)) {
      node[rng.pick(["extra", "format", "path", "generation", "nonce", "ttlMs"])] = nastyValue(rng);
    } else if (op === 5 && Array.isArray(node) && node.length > 0) {
      const i = rng.int(node.length);
      node.splice(i, 0, structuredClone(node[i]));
    } else if (op === 6 && Array.isArray(parent)) {
      parent.push(structuredClone(node));
    } else {
      parent[key] = typeof node === "string"
        ? node.length
        : typeof node === "number"
        ? String(node)
        : [node];
    }
  }
  return root;
}

/** Tokens spliced into text. */
const TEXT_TOKENS: readonly string[] = [
  "\n",
  "\r\n",
  "\t",
  "\u0000",
  "\ufeff",
  "\ud800",
  "'",
  '"',
  "\\",
  ":",
  ": ",
  "- ",
  "#",
  "{",
  "}",
  "[",
  "]",
  ",",
  "&a ",
  "*a",
  "!!binary ",
  "!!js/function ",
  "<<: ",
  "~",
  "null",
  "-1",
  "1e999",
  "0x10",
  "99999999999999999999",
  "../",
  "%",
  "?",
  "@",
  "//",
  "é",
];

/**
 * Applies one to three byte-level mutations to `text`: a character replaced,
 * a range deleted or duplicated, a token inserted, the end cut off.
 */
export function mutateText(rng: Rng, text: string): string {
  let s = text;
  for (let n = 1 + rng.int(3); n > 0; n--) {
    const i = rng.int(s.length + 1);
    switch (rng.int(6)) {
      case 0:
        s = s.slice(0, i) + rng.pick(TEXT_TOKENS) + s.slice(i);
        break;
      case 1:
        s = s.slice(0, i) + s.slice(i + 1 + rng.int(8));
        break;
      case 2: {
        const j = Math.min(s.length, i + 1 + rng.int(16));
        s = s.slice(0, j) + s.slice(i, j) + s.slice(j);
        break;
      }
      case 3:
        s = s.slice(0, i);
        break;
      case 4:
        s = s.slice(0, i) + String.fromCharCode(rng.int(128)) + s.slice(i + 1);
        break;
      default:
        s = s.slice(0, i) + rng.pick(NASTY_STRINGS) + s.slice(i);
    }
  }
  return s;
}
