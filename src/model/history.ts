/**
 * Reading a model's history with the reason it ends, and the record `gc`
 * leaves where it cut a history (datastore format 2, design/format.md).
 *
 * A history is the chain of `parent` links from the head. It ends at the
 * model's first commit, where `gc` removed the older records (the model's
 * **pruned record** `history/TYPE/ID/pruned` names the oldest generation gc
 * kept), or — in a damaged datastore — at a parent whose record is missing
 * or unreadable. {@linkcode walkHistory} says which, so `log` can say "older
 * generations removed by gc" and `verify` can report a broken link.
 *
 * Generations strictly decrease along the chain (a parent that is not older
 * is corrupt), so a walk always ends.
 *
 * @example
 * ```ts ignore
 * import { walkHistory } from "./history.ts";
 * const head = await getHead(provider, model);
 * const walk = await walkHistory(provider, model, { head: head! });
 * console.log(walk.entries.length, walk.end.kind); // 3 "first"
 * ```
 * @module
 */
import { z } from "zod";
import { CorruptError } from "../errors.ts";
import type { CallOptions, Provider } from "../provider/contract.ts";
import { historyKey, prunedKey } from "../provider/keys.ts";
import type { HistoryEntry, StoredManifest } from "./commits.ts";
import { type Committer, type Manifest, parseManifestText } from "./manifest.ts";
import { formatRef, type ModelRef } from "./ref.ts";

export type { HistoryEntry };

/** Why a walk stopped. */
export type HistoryEnd =
  /** The oldest entry is the model's first commit (no parent). */
  | { kind: "first" }
  /** The walk's `limit` was reached (older generations may exist). */
  | { kind: "limit" }
  /** The oldest entry's parent was removed by gc: it is older than the pruned record's floor. */
  | { kind: "pruned"; oldestKept: number }
  /** The oldest entry names a parent whose record is missing, and gc did not remove it. */
  | { kind: "missing"; generation: number; commit: string; key: string }
  /** The oldest entry names a parent that is not older, or whose record is unreadable. */
  | { kind: "corrupt"; generation: number; key: string; message: string };

/** The entries read (newest first) and why the walk stopped. */
export interface HistoryWalk {
  entries: HistoryEntry[];
  end: HistoryEnd;
}

/** What `gc` records where it cut a model's history. */
export interface PrunedRecord {
  format: 2;
  model: string;
  /** The oldest generation gc kept: every older one may have been removed. */
  oldestKept: { generation: number; commit: string };
  prunedAt: string;
  prunedBy: Committer;
}

const prunedSchema = z.object({
  format: z.literal(2),
  model: z.string(),
  oldestKept: z.object({
    generation: z.number().int().positive(),
    commit: z.string().regex(/^[0-9a-f]{16,64}$/),
  }),
  prunedAt: z.string(),
  prunedBy: z.object({ holder: z.string(), host: z.string(), pid: z.number().int() }),
});

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Reads a record's bytes by key (a cache may stand in for the provider). */
export type ReadRecord = (key: string) => Promise<Uint8Array | null>;

/**
 * Parses the bytes of a pruned record. Throws `CorruptError` (exit 6) when
 * they are not one.
 */
export function parsePruned(bytes: Uint8Array, model: ModelRef): PrunedRecord {
  const key = prunedKey(model);
  let data: unknown;
  try {
    data = JSON.parse(decoder.decode(bytes));
  } catch (err) {
    throw new CorruptError(
      `The pruned record ${key} is not valid JSON; delete it (gc writes it again).`,
      { cause: err },
    );
  }
  const parsed = prunedSchema.safeParse(data);
  if (!parsed.success || parsed.data.model !== formatRef(model)) {
    throw new CorruptError(
      `The pruned record ${key} is garbled (${
        parsed.success ? `it names model ${JSON.stringify(parsed.data.model)}` : "wrong shape"
      }); delete it (gc writes it again).`,
    );
  }
  return parsed.data as PrunedRecord;
}

/** The model's pruned record with its version, or null when gc never cut its history. */
export async function readPruned(
  p: Provider,
  model: ModelRef,
  opts: CallOptions = {},
): Promise<{ record: PrunedRecord; version: string } | null> {
  const rec = await p.getRecord(prunedKey(model), opts);
  if (rec === null) return null;
  return { record: parsePruned(rec.bytes, model), version: rec.version };
}

/**
 * Records that gc keeps `oldestKept` and everything newer of `model`
 * (create, or replace the version read as `current`). Written before gc
 * removes any older record, so a reader that meets a missing parent below
 * it knows gc removed it.
 */
export async function writePruned(
  p: Provider,
  model: ModelRef,
  opts: CallOptions & {
    oldestKept: { generation: number; commit: string };
    by: Committer;
    current: string | null;
  },
): Promise<void> {
  const record: PrunedRecord = {
    format: 2,
    model: formatRef(model),
    oldestKept: opts.oldestKept,
    prunedAt: new Date().toISOString(),
    prunedBy: opts.by,
  };
  const bytes = encoder.encode(JSON.stringify(record));
  const call = opts.signal === undefined ? {} : { signal: opts.signal };
  const key = prunedKey(model);
  const done = opts.current === null
    ? await p.createRecord(key, bytes, call)
    : await p.replaceRecord(key, bytes, opts.current, call);
  if (done === null) {
    throw new CorruptError(
      `The pruned record ${key} changed while gc ran (is another gc running without the ` +
        `global lock?); nothing was removed for ${formatRef(model)}. Rerun gc.`,
    );
  }
}

/**
 * Walks a model's history from `head`, newest first, reading each parent's
 * history record. Stops after `limit` entries, when `stop` returns true for
 * an entry (that entry included), or where the chain ends (see
 * {@linkcode HistoryEnd}). Never throws for a damaged chain: the end says
 * what is wrong; datastore faults are thrown.
 */
export async function walkHistory(
  p: Provider,
  model: ModelRef,
  opts: CallOptions & {
    head: StoredManifest;
    limit?: number;
    stop?: (m: Manifest) => boolean;
    /** Reads a record's bytes (default: `p.getRecord`). */
    read?: ReadRecord;
  },
): Promise<HistoryWalk> {
  const call = opts.signal === undefined ? {} : { signal: opts.signal };
  const read: ReadRecord = opts.read ??
    (async (key) => (await p.getRecord(key, call))?.bytes ?? null);
  const entries: HistoryEntry[] = [];
  const limit = opts.limit ?? Infinity;
  let m: Manifest = opts.head.manifest;
  for (;;) {
    entries.push({ manifest: m, key: historyKey(model, m.generation, m.commit) });
    if (opts.stop?.(m)) return { entries, end: { kind: "limit" } };
    const parent: Manifest["parent"] = m.parent;
    if (parent === null) return { entries, end: { kind: "first" } };
    if (entries.length >= limit) return { entries, end: { kind: "limit" } };
    const key = historyKey(model, parent.generation, parent.commit);
    if (parent.generation >= m.generation) {
      return {
        entries,
        end: {
          kind: "corrupt",
          generation: parent.generation,
          key,
          message: `generation ${m.generation} names a parent ${parent.generation} that is not ` +
            `older`,
        },
      };
    }
    const bytes = await read(key);
    if (bytes === null) {
      const pruned = await readPruned(p, model, call).catch((err) => {
        if (err instanceof CorruptError) return null; // verify reports it
        throw err;
      });
      if (pruned !== null && parent.generation < pruned.record.oldestKept.generation) {
        return {
          entries,
          end: { kind: "pruned", oldestKept: pruned.record.oldestKept.generation },
        };
      }
      return {
        entries,
        end: { kind: "missing", generation: parent.generation, commit: parent.commit, key },
      };
    }
    let next: Manifest;
    try {
      next = parseManifestText(decoder.decode(bytes), model, key);
    } catch (err) {
      if (!(err instanceof CorruptError)) throw err;
      return {
        entries,
        end: { kind: "corrupt", generation: parent.generation, key, message: err.message },
      };
    }
    if (next.generation !== parent.generation || next.commit !== parent.commit) {
      return {
        entries,
        end: {
          kind: "corrupt",
          generation: parent.generation,
          key,
          message: `the record holds generation ${next.generation} commit ${next.commit}, ` +
            `not the one its key names`,
        },
      };
    }
    m = next;
  }
}

/** Counts of what one generation changed relative to another (its parent). */
export interface ChangeCounts {
  added: number;
  modified: number;
  deleted: number;
}

/**
 * What `m` changed relative to `parent`: paths added, modified (content or
 * executable bit) and deleted. With no parent (a first commit) every file
 * is added.
 */
export function changesFrom(m: Manifest, parent: Manifest | null): ChangeCounts {
  const before = new Map((parent?.files ?? []).map((f) => [f.path, f]));
  const out: ChangeCounts = { added: 0, modified: 0, deleted: 0 };
  for (const f of m.files) {
    const b = before.get(f.path);
    if (b === undefined) out.added++;
    else {
      if (b.sha256 !== f.sha256 || b.executable !== f.executable) out.modified++;
      before.delete(f.path);
    }
  }
  out.deleted = before.size;
  return out;
}
