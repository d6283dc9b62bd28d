/**
 * Symbolic links inside a model (SPEC §3 invariant 9): which link targets a
 * manifest may hold, and where a link leads. A link is synced as a link only
 * when it stays inside its model directory: its target is relative, and
 * following it — segment by segment, through any other link it meets, as the
 * kernel would — never climbs above the model directory. One resolver serves
 * the scanner (which looks at the working tree) and the manifest reader
 * (which looks at the manifest's own entries), so a link the scan accepts is
 * a link every reader accepts.
 *
 * @example
 * ```ts
 * import { resolveLink } from "./link.ts";
 * const none = { lookup: () => undefined };
 * console.log(resolveLink("bin/run", "../lib/run.sh", none)); // { kind: "inside", path: "lib/run.sh" }
 * console.log(resolveLink("bin/run", "../../x", none).kind); // outside
 * ```
 * @module
 */
import { hashBytes } from "./hash.ts";
import { MAX_PATH_BYTES } from "./path.ts";

const encoder = new TextEncoder();

/**
 * What is at a path inside the model, for {@linkcode resolveLink}: a
 * directory, a file, a link and its target, a link whose target cannot be
 * read as text (`opaque`), or nothing (undefined).
 */
export type LinkNode = "dir" | "file" | "opaque" | { link: string } | undefined;

/** Where a link leads. */
export type LinkResolution =
  /** Inside the model, at `path` (relative to the model directory; "" = the model directory). */
  | { kind: "inside"; path: string }
  /**
   * It leaves the model: `via` names the link on the way that does (with its
   * target), empty when the link's own target does.
   */
  | { kind: "outside"; via: string }
  /** More than 40 links in a row (the kernel's limit): a loop. */
  | { kind: "loop" };

/** Links followed in a row before a resolution is a loop (Linux's limit). */
const MAX_HOPS = 40;

/**
 * Explains why `target` cannot be a stored link's target, or undefined: it
 * must be non-empty, relative, at most 1024 bytes of well-formed text, and
 * hold no NUL or backslash (the same characters a path may not hold).
 */
export function linkTargetProblem(target: string): string | undefined {
  if (target.length === 0) return "its target is empty";
  if (target.charCodeAt(0) === 47) return "its target is absolute";
  if (target.includes("\0")) return "its target contains NUL";
  if (target.includes("\\")) return "its target contains a backslash";
  if (!target.isWellFormed()) return "its target is not well-formed Unicode";
  if (target.length * 3 > MAX_PATH_BYTES && encoder.encode(target).length > MAX_PATH_BYTES) {
    return "its target is over 1024 bytes";
  }
  return undefined;
}

/**
 * Follows the link at `linkPath` (relative to the model directory) whose
 * target is `target`, looking at each path it passes through with `lookup`:
 * another link is followed, a missing path ends the lookups (the rest is
 * resolved lexically, as the link would lead once it existed). Never touches
 * the filesystem itself.
 */
export function resolveLink(
  linkPath: string,
  target: string,
  opts: { lookup: (path: string) => LinkNode },
): LinkResolution {
  const { lookup } = opts;
  if (target.charCodeAt(0) === 47) return { kind: "outside", via: "" };
  const at = linkPath.split("/");
  at.pop();
  /** Segments still to walk, last first. */
  const todo = target.split("/").reverse();
  let hops = 0;
  let known = true;
  while (todo.length > 0) {
    const seg = todo.pop()!;
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (at.length === 0) return { kind: "outside", via: "" };
      at.pop();
      continue;
    }
    at.push(seg);
    if (!known) continue;
    const here = at.join("/");
    const node = lookup(here);
    if (node === undefined) {
      known = false;
    } else if (node === "opaque") {
      return { kind: "outside", via: `${here} (a link whose target is not valid UTF-8)` };
    } else if (typeof node === "object") {
      if (++hops > MAX_HOPS) return { kind: "loop" };
      if (node.link.charCodeAt(0) === 47) {
        return { kind: "outside", via: `${here} (-> ${node.link})` };
      }
      at.pop();
      const more = node.link.split("/");
      for (let i = more.length - 1; i >= 0; i--) todo.push(more[i]);
    } else if (node === "file" && todo.some((s) => s !== "" && s !== ".")) {
      known = false; // a file used as a directory: dangling from here on
    }
  }
  return { kind: "inside", path: at.join("/") };
}

/**
 * The links of a file list (a manifest's or a scan's) that do not stay
 * inside the model when followed through the list's own links, each with
 * the reason. Paths the list does not name are resolved lexically.
 */
export function linkListProblems(
  files: Iterable<{ path: string; link?: string }>,
): { path: string; problem: string }[] {
  const byPath = new Map<string, { link?: string }>();
  const dirs = new Set<string>([""]);
  const links: { path: string; link: string }[] = [];
  for (const f of files) {
    byPath.set(f.path, f);
    if (f.link !== undefined) links.push({ path: f.path, link: f.link });
    for (let i = f.path.indexOf("/"); i !== -1; i = f.path.indexOf("/", i + 1)) {
      dirs.add(f.path.slice(0, i));
    }
  }
  if (links.length === 0) return [];
  const lookup = (p: string): LinkNode => {
    const f = byPath.get(p);
    if (f !== undefined) return f.link === undefined ? "file" : { link: f.link };
    return dirs.has(p) ? "dir" : undefined;
  };
  const out: { path: string; problem: string }[] = [];
  for (const l of links) {
    const r = resolveLink(l.path, l.link, { lookup });
    if (r.kind === "outside") {
      out.push({ path: l.path, problem: leavesProblem(l.link, r.via) });
    } else if (r.kind === "loop") {
      out.push({ path: l.path, problem: "a symlink loop" });
    }
  }
  return out;
}

/** The problem of a link that leaves its model, for messages. */
export function leavesProblem(target: string, via: string): string {
  return `a symlink to ${target} that leaves the model${via === "" ? "" : ` through ${via}`}`;
}

/**
 * Why a link entry is inconsistent (its target breaks the target rules, or
 * its sha256, size or executable bit do not describe the target), or
 * undefined. Shared by the manifest and base readers.
 */
export function linkEntryProblem(
  f: { sha256: string; size: number; executable: boolean; link: string },
): string | undefined {
  const bad = linkTargetProblem(f.link);
  if (bad !== undefined) return bad;
  const bytes = linkBytes(f.link);
  if (f.executable) return "a link cannot be executable";
  if (f.size !== bytes.length || f.sha256 !== hashBytes(bytes)) {
    return "its sha256 and size do not describe its target";
  }
  return undefined;
}

/** The UTF-8 bytes of a link target: what a link entry's sha256 and size describe. */
export function linkBytes(target: string): Uint8Array {
  return encoder.encode(target);
}
