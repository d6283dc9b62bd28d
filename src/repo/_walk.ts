/**
 * The walk of one model directory behind {@linkcode scanModel} (`./scan.ts`):
 * which entries are files, which are links and where they lead, and which
 * cannot be synced. Private to the scanner.
 *
 * Names come from `readdir`, which in Deno is a string: a name that is not
 * valid UTF-8 arrives with U+FFFD in place of each bad byte, so it cannot be
 * opened by that name and may even equal another entry's name. Such a name
 * is detected without reading raw bytes: a name holding U+FFFD that `lstat`
 * cannot find, or that appears twice in one directory, is not valid UTF-8.
 * Only names holding U+FFFD pay for the check.
 *
 * @module
 */
import { leavesProblem, type LinkNode, linkTargetProblem, resolveLink } from "../model/link.ts";
import { nameProblem, needsPathCheck, STATE_DIR, syncablePathProblem } from "../model/path.ts";
import { type Entry, lstatEntry } from "./entry.ts";
import type { ExcludeMatcher } from "./exclude.ts";

/** What links that leave their model become (see `SymlinkMode` in `./scan.ts`). */
export type LinkPolicy = "store" | "follow";

/** Callbacks and lists of one walk. */
export interface WalkContext {
  /** The model directory. */
  root: string;
  matcher: ExcludeMatcher;
  /** Entries never synced by rule, each `path (reason)`. */
  skipped: string[];
  /** An entry that should be synced but cannot be. */
  unsyncable: (path: string, problem: string) => void;
  symlinks: LinkPolicy;
  signal?: AbortSignal;
  /** A regular file (or, with `follow`, the file a link leaving the model points to). */
  onFile: (path: string, abs: string, info: Entry) => void;
  /** A link kept as a link: its exact target and the link's own lstat. */
  onLink: (path: string, target: string, info: Entry) => void;
}

const YIELD_EVERY = 4096;
const REPLACEMENT = "\uFFFD";

/**
 * Depth-first walk, one readDir per directory and one lstat per regular file.
 * Synchronous calls: in Deno an async lstat costs about four times a sync
 * one, and this loop is the whole cost of a no-op push. It yields to the
 * event loop every few thousand entries so timers (lease renewals) still run.
 * Nothing is allocated per entry beyond its path.
 */
export async function walk(ctx: WalkContext): Promise<void> {
  const root = ctx.root;
  const dirs = [""];
  let sinceYield = 0;
  while (dirs.length > 0) {
    ctx.signal?.throwIfAborted();
    const rel = dirs.pop()!;
    const abs = rel === "" ? root : `${root}/${rel}`;
    /** Names holding U+FFFD seen in this directory (made only when one appears). */
    let lossy: Set<string> | undefined;
    for (const e of Deno.readDirSync(abs)) {
      const path = rel === "" ? e.name : `${rel}/${e.name}`;
      if (ctx.matcher.matchesEntry(path, e.name, e.isDirectory)) continue;
      // Local state of any repository is never synced (SPEC §3 invariant 6),
      // also that of a repository nested inside a model.
      if (e.name === STATE_DIR) {
        ctx.skipped.push(`${path} (modelsync state, never synced)`);
        continue;
      }
      if (e.name.includes(REPLACEMENT)) {
        lossy ??= new Set();
        if (lossy.has(e.name) || lstatOrUndefined(`${abs}/${e.name}`) === undefined) {
          ctx.unsyncable(path, "its name is not valid UTF-8 (shown with U+FFFD)");
          continue;
        }
        lossy.add(e.name);
      }
      // The rule readers apply to manifest paths (src/model/path.ts), per name.
      const problem = nameProblem(e.name) ??
        (needsPathCheck(path, rel === "") ? syncablePathProblem(path) : undefined);
      if (problem !== undefined) {
        ctx.unsyncable(path, `its name cannot be synced: ${problem}`);
        continue;
      }
      if (e.isSymlink) {
        onSymlink(path, `${abs}/${e.name}`, ctx);
      } else if (e.isDirectory) {
        dirs.push(path);
      } else if (e.isFile) {
        const file = `${abs}/${e.name}`;
        const info = lstatOrUndefined(file);
        if (info?.isFile) ctx.onFile(path, file, info);
        else if (info?.isSymlink) onSymlink(path, file, ctx);
        if (++sinceYield >= YIELD_EVERY) {
          sinceYield = 0;
          await new Promise((resolve) => setTimeout(resolve, 0));
          ctx.signal?.throwIfAborted();
        }
      } else {
        ctx.skipped.push(`${path} (not a regular file)`);
      }
    }
  }
}

/**
 * A link: kept as a link when it stays inside the model (resolved through
 * the working tree, so a link through another link that leaves is caught),
 * else unsyncable — or, with `follow`, the file it points to.
 */
function onSymlink(path: string, abs: string, ctx: WalkContext): void {
  const target = readLinkOrProblem(abs);
  if (target === undefined) return; // vanished meanwhile
  if (typeof target !== "string") return ctx.unsyncable(path, target.problem);
  const r = resolveLink(path, target, { lookup: (p) => lookupNode(`${ctx.root}/${p}`) });
  if (r.kind === "loop") return ctx.unsyncable(path, "a symlink loop");
  if (r.kind === "outside") {
    if (ctx.symlinks === "follow") return follow(path, abs, { target, ctx });
    return ctx.unsyncable(path, leavesProblem(target, r.via));
  }
  const bad = linkTargetProblem(target);
  if (bad !== undefined) return ctx.unsyncable(path, `a symlink, but ${bad}`);
  const info = lstatOrUndefined(abs);
  if (info?.isSymlink) ctx.onLink(path, target, info);
}

/** `symlinks: follow`: the file a link leaving the model points to is the entry's content. */
function follow(path: string, abs: string, opts: { target: string; ctx: WalkContext }): void {
  const { target, ctx } = opts;
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(abs);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return ctx.unsyncable(path, `a symlink to ${target}, which does not exist`);
    }
    if (err instanceof Deno.errors.FilesystemLoop) return ctx.unsyncable(path, "a symlink loop");
    throw err;
  }
  if (info.isFile) return ctx.onFile(path, abs, info);
  ctx.unsyncable(
    path,
    info.isDirectory
      ? `a symlink to the directory ${target} outside the model ("symlinks: follow" follows ` +
        `links to files only)`
      : `a symlink to ${target}, which is not a regular file`,
  );
}

function readLinkOrProblem(abs: string): string | { problem: string } | undefined {
  try {
    return Deno.readLinkSync(abs);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    if (err instanceof Deno.errors.InvalidData) {
      return { problem: "a symlink whose target is not valid UTF-8" };
    }
    throw err;
  }
}

/** What the working tree holds at `abs`, for {@linkcode resolveLink}. */
function lookupNode(abs: string): LinkNode {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(abs);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    throw err;
  }
  if (info.isDirectory) return "dir";
  if (!info.isSymlink) return "file";
  const target = readLinkOrProblem(abs);
  if (target === undefined) return undefined;
  return typeof target === "string" ? { link: target } : "opaque";
}

/**
 * lstat, or undefined when the entry vanished (or its name is not what
 * readdir showed): one `statx` per file through `lstatEntry`, the cost of a
 * no-op scan.
 */
export function lstatOrUndefined(path: string): Entry | undefined {
  return lstatEntry(path) ?? undefined;
}
