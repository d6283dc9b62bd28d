/**
 * Manifests: the committed state of one model.
 *
 * A manifest lists every file of the model by relative path with its SHA-256,
 * size and executable bit, plus its generation and who committed it. An empty
 * file list is a tombstone (the model was deleted). A symbolic link is an
 * entry with `link` (its target, stored inline: no blob); its `sha256` and
 * `size` describe the target's UTF-8 bytes and `executable` is false. A
 * small file may be packed: `pack` names the pack blob and offset holding it.
 *
 * @example
 * ```ts
 * import { parseManifest } from "./manifest.ts";
 * const m = parseManifest({
 *   format: 1, model: "vpc/m1", generation: 1, files: [],
 *   committedBy: { holder: "ci", host: "h", pid: 1 }, committedAt: new Date().toISOString(),
 * }, { type: "vpc", id: "m1" });
 * console.log(m.generation); // 1
 * ```
 * @module
 */
import { z } from "zod";
import { CorruptError } from "../errors.ts";
import { formatRef, type ModelRef } from "./ref.ts";
import { pathProblem, syncablePathProblem } from "./path.ts";
import { linkEntryProblem, linkListProblems } from "./link.ts";
import type { PackLocation } from "./pack.ts";

export { pathProblem, syncablePathProblem };

/** One file (or symbolic link) of a model. */
export interface FileEntry {
  /** Relative path inside the model directory, `/`-separated. */
  path: string;
  /** SHA-256 of the content; of a link: of its target's UTF-8 bytes. */
  sha256: string;
  /** Bytes of the content; of a link: of its target in UTF-8. */
  size: number;
  /** Always false for a link. */
  executable: boolean;
  /**
   * Present for a symbolic link: its target, relative, exactly as `readlink`
   * returns it, and staying inside the model directory. A link has no blob.
   */
  link?: string;
  /**
   * Present for a packed file (design/format.md, "Packs"): its bytes are
   * `size` bytes from `offset` of the pack blob `blob`, not a blob of their
   * own. Never with `link`.
   */
  pack?: PackLocation;
}

/** Who committed a manifest or holds a lock. */
export interface Committer {
  holder: string;
  host: string;
  pid: number;
}

/** The commit a manifest was made on. */
export interface ParentRef {
  generation: number;
  commit: string;
}

/**
 * The committed state of one model (datastore format 2): one commit. Its
 * history record and, while it is current, the model's head hold it.
 */
export interface Manifest {
  format: 2;
  /** `type/id` of the model, checked against the key it was stored under. */
  model: string;
  /** Grows with every commit (not always by one: see design/sync.md). */
  generation: number;
  /** Random id of this commit (hex), unique within the model. */
  commit: string;
  /** The commit this one replaced as the head, or null for the model's first. */
  parent: ParentRef | null;
  /** Sorted by path, unique paths. Empty = tombstone. */
  files: FileEntry[];
  committedBy: Committer;
  committedAt: string;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** The shape of a file entry. @internal */
export const fileSchema = z.object({
  path: z.string(),
  sha256: z.string().regex(SHA256),
  size: z.number().int().nonnegative(),
  executable: z.boolean(),
  link: z.string().optional(),
  pack: z.object({
    blob: z.string().regex(SHA256),
    offset: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  }).strict().optional(),
}).strict();

const COMMIT = /^[0-9a-f]{16,64}$/;
const committerSchema = z.object({ holder: z.string(), host: z.string(), pid: z.number().int() });

const manifestSchema = z.object({
  format: z.literal(2),
  model: z.string(),
  generation: z.number().int().positive().max(999_999_999_999),
  commit: z.string().regex(COMMIT),
  parent: z.object({
    generation: z.number().int().positive(),
    commit: z.string().regex(COMMIT),
  }).strict().nullable(),
  files: z.array(fileSchema),
  committedBy: committerSchema,
  committedAt: z.string(),
});

/** {@linkcode manifestSchema} with its files taken as they are: {@linkcode plainFileEntry} checks them. */
const manifestShellSchema = manifestSchema.extend({ files: z.array(z.unknown()) });

const FILE_KEYS = new Set(["path", "sha256", "size", "executable", "link", "pack"]);
const PACK_KEYS = new Set(["blob", "offset"]);

/** True for an object that has only own keys of `allowed`. */
function onlyKeys(o: object, allowed: ReadonlySet<string>): boolean {
  for (const k in o) if (!Object.hasOwn(o, k) || !allowed.has(k)) return false;
  return true;
}

/**
 * True when `f` is a file entry `fileSchema` accepts, checked without zod,
 * which allocated about 2 KB per entry (a first push of 100,000 files spent
 * about 190 MiB of garbage checking its own manifests before committing
 * them). It accepts nothing `fileSchema` refuses (a test checks that over
 * mutated entries); when it says false, `fileSchema` is asked, and its issue
 * is what the error names. @internal
 */
export function plainFileEntry(f: unknown): boolean {
  if (typeof f !== "object" || f === null || Array.isArray(f) || !onlyKeys(f, FILE_KEYS)) {
    return false;
  }
  const e = f as Record<string, unknown>;
  if (typeof e.path !== "string" || typeof e.executable !== "boolean") return false;
  if (typeof e.sha256 !== "string" || !SHA256.test(e.sha256)) return false;
  if (!Number.isSafeInteger(e.size) || (e.size as number) < 0) return false;
  if (e.link !== undefined && typeof e.link !== "string") return false;
  if (e.pack === undefined) return true;
  const p = e.pack as Record<string, unknown>;
  if (typeof p !== "object" || p === null || Array.isArray(p) || !onlyKeys(p, PACK_KEYS)) {
    return false;
  }
  return typeof p.blob === "string" && SHA256.test(p.blob) && Number.isSafeInteger(p.offset) &&
    (p.offset as number) >= 0;
}

/** `data` as a manifest `manifestSchema` accepts, or the first issue it finds. */
function checkShape(
  data: unknown,
): { ok: true; m: Manifest } | { ok: false; issue: z.core.$ZodIssue } {
  const shell = manifestShellSchema.safeParse(data);
  if (shell.success && shell.data.files.every(plainFileEntry)) {
    return { ok: true, m: shell.data as Manifest };
  }
  const full = manifestSchema.safeParse(data);
  if (full.success) return { ok: true, m: full.data as Manifest };
  return { ok: false, issue: full.error.issues[0] };
}

/** A manifest of datastore format 1 (one object per model, no history), for `migrate`. */
const format1Schema = z.object({
  format: z.literal(1),
  model: z.string(),
  generation: z.number().int().positive(),
  files: z.array(fileSchema),
  committedBy: committerSchema,
  committedAt: z.string(),
});

/**
 * Parses the text of a stored manifest: JSON, then {@linkcode parseManifest}.
 * `where` names the object in the datastore for the error (e.g. its key).
 * With `format1`, a format-1 manifest is read instead (for `migrate`); it
 * comes back as a first commit with a fresh id.
 */
export function parseManifestText(
  text: string,
  model: ModelRef,
  where: string,
  opts: { format1?: boolean } = {},
): Manifest {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new CorruptError(
      `Manifest of ${formatRef(model)} (${where}) is not valid JSON; refusing it. ` +
        `Repair or re-push the model from a good copy.`,
      { cause: err },
    );
  }
  if (opts.format1) {
    const v1 = format1Schema.safeParse(data);
    if (!v1.success) throw corruptShape(model, v1.error.issues[0]);
    return parseManifest({ ...v1.data, format: 2, commit: newCommitId(), parent: null }, model);
  }
  return parseManifest(data, model);
}

/** The largest generation a datastore stores (12 decimal digits). */
export const MAX_GENERATION = 999_999_999_999;

/** A fresh random commit id: 16 hex digits. */
export function newCommitId(): string {
  const b = crypto.getRandomValues(new Uint8Array(8));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

function corruptShape(model: ModelRef, issue: z.core.$ZodIssue): CorruptError {
  return new CorruptError(
    `Manifest of ${formatRef(model)} is corrupt (${issue.path.join(".") || "root"}: ` +
      `${issue.message}); refusing it. Repair or re-push the model from a good copy.`,
  );
}

/**
 * Checks the arguments of a provider's `commitManifest`: `expected` is a
 * valid generation, `manifest` is generation `expected + 1` of `model`, and
 * it is a manifest readers would accept (never store what they would
 * refuse). Throws a plain Error: these are programming errors, not data.
 */
export function assertCommitArgs(model: ModelRef, expected: number, manifest: Manifest): void {
  const key = formatRef(model);
  if (!Number.isInteger(expected) || expected < 0 || expected >= MAX_GENERATION) {
    throw new Error(`commitManifest(${key}): expected generation ${expected} is not valid.`);
  }
  if (manifest.generation <= expected) {
    throw new Error(
      `commitManifest(${key}): manifest generation ${manifest.generation} must be above ` +
        `the current ${expected}.`,
    );
  }
  if (manifest.model !== key) {
    throw new Error(`commitManifest(${key}): manifest names model ${manifest.model}.`);
  }
  parseManifest(manifest, model);
}

/**
 * Validates untrusted manifest data read from a datastore. Throws
 * {@linkcode CorruptError} (exit 6) when it is malformed, belongs to another
 * model, names a path the scanner would never sync (one that could leave the
 * model directory, or has a `.modelsync` segment), or holds a link that
 * leaves the model directory.
 */
export function parseManifest(data: unknown, model: ModelRef): Manifest {
  const key = formatRef(model);
  const parsed = checkShape(data);
  if (!parsed.ok) throw corruptShape(model, parsed.issue);
  const m = parsed.m;
  if (m.model !== key) {
    throw new CorruptError(
      `Manifest stored for ${key} names model ${
        JSON.stringify(m.model)
      }; refusing it as corrupt. ` +
        `Repair or re-push the model from a good copy.`,
    );
  }
  const seen = new Set<string>();
  const refuse = (path: string, problem: string) =>
    new CorruptError(
      `Manifest of ${key} generation ${m.generation} names path ${JSON.stringify(path)}: ` +
        `${problem}; refusing it as corrupt. Nothing was written. ` +
        `Repair or re-push the model from a good copy.`,
    );
  let links = false;
  for (const f of m.files) {
    const problem = syncablePathProblem(f.path);
    if (problem !== undefined) throw refuse(f.path, problem);
    if (f.link !== undefined && f.pack !== undefined) {
      throw refuse(f.path, "it is a link, which has no content to pack, but names a pack");
    }
    if (f.link !== undefined) {
      const bad = linkEntryProblem(f as FileEntry & { link: string });
      if (bad !== undefined) throw refuse(f.path, `it is a link, but ${bad}`);
      links = true;
    }
    const lower = f.path;
    if (seen.has(lower)) {
      throw new CorruptError(
        `Manifest of ${key} names ${JSON.stringify(f.path)} twice; refusing it as corrupt.`,
      );
    }
    seen.add(lower);
  }
  // Also refuse a file that is a directory prefix of another ("a" and "a/b").
  for (const f of m.files) {
    const segs = f.path.split("/");
    for (let i = 1; i < segs.length; i++) {
      const dir = segs.slice(0, i).join("/");
      if (seen.has(dir)) {
        throw new CorruptError(
          `Manifest of ${key} names ${JSON.stringify(dir)} both as a file and as a directory; ` +
            `refusing it as corrupt.`,
        );
      }
    }
  }
  if (links) {
    const [first] = linkListProblems(m.files);
    if (first !== undefined) throw refuse(first.path, `it is ${first.problem}`);
  }
  return {
    ...m,
    files: [...m.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
  };
}

/**
 * Builds a manifest with files sorted by path and a fresh commit id; the
 * commit sets `parent` to the head it replaces.
 */
export function makeManifest(
  model: ModelRef,
  generation: number,
  files: FileEntry[],
  committedBy: Committer,
): Manifest {
  return {
    format: 2,
    model: formatRef(model),
    generation,
    commit: newCommitId(),
    parent: null,
    files: [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    committedBy,
    committedAt: new Date().toISOString(),
  };
}

/** True when the manifest is a tombstone (the model was deleted). */
export function isTombstone(m: Manifest): boolean {
  return m.files.length === 0;
}
