/**
 * The record keys of datastore format 2 (design/format.md), named in one
 * place, and a helper that reads every page of a listing.
 *
 * ```
 * config                                  the datastore marker {"format": 2, ...}
 * heads/TYPE/ID                           the model's current commit (moved by CAS)
 * history/TYPE/ID/GGGGGGGGGGGG-COMMIT     one immutable record per commit
 * history/TYPE/ID/pruned                  where gc cut the history (src/model/history.ts)
 * leases/global, leases/models/TYPE/ID    lock records (src/lock/records.ts)
 * gc                                      the gc mark, moved around blob removals (src/model/gc_mark.ts)
 * ```
 *
 * @example
 * ```ts
 * import { headKey, historyKey } from "./keys.ts";
 * console.log(headKey({ type: "vpc", id: "m1" })); // heads/vpc/m1
 * console.log(historyKey({ type: "vpc", id: "m1" }, 7, "ab12")); // history/vpc/m1/000000000007-ab12
 * ```
 * @module
 */
import { type ModelRef, parseModelRef } from "../model/ref.ts";
import type { ListOptions, Provider, RecordListing } from "./contract.ts";

/** The datastore marker of format 2. */
export const CONFIG_KEY = "config";
/** The datastore marker of format 1 (read only to refuse, and by `migrate`). */
export const FORMAT1_MARKER_KEY = "modelsync.json";
/**
 * The gc mark: `gc` replaces it before and after it removes blobs, so a
 * push that stored blobs before its lock sees whether any were removed
 * since (src/model/gc_mark.ts).
 */
export const GC_MARK_KEY = "gc";
/** Prefix of every head. */
export const HEADS_PREFIX = "heads/";

/** The head record of a model. */
export function headKey(model: ModelRef): string {
  return `${HEADS_PREFIX}${model.type}/${model.id}`;
}

/** The model a head key names, or undefined for anything else. */
export function modelOfHeadKey(key: string): ModelRef | undefined {
  if (!key.startsWith(HEADS_PREFIX)) return undefined;
  try {
    return parseModelRef(key.slice(HEADS_PREFIX.length));
  } catch {
    return undefined;
  }
}

/** Prefix of every history record. */
export const HISTORY_PREFIX = "history/";

/** Prefix of a model's history records. */
export function historyPrefix(model: ModelRef): string {
  return `${HISTORY_PREFIX}${model.type}/${model.id}/`;
}

/** The record where gc notes the oldest generation of a model it kept. */
export function prunedKey(model: ModelRef): string {
  return `${historyPrefix(model)}pruned`;
}

/** The model a key under `history/` belongs to (`history/TYPE/ID/ENTRY`), or undefined. */
export function modelOfHistoryKey(key: string): ModelRef | undefined {
  if (!key.startsWith(HISTORY_PREFIX)) return undefined;
  const rest = key.slice(HISTORY_PREFIX.length);
  const slash = rest.lastIndexOf("/");
  if (slash <= 0) return undefined;
  try {
    return parseModelRef(rest.slice(0, slash));
  } catch {
    return undefined;
  }
}

/** The history record of one commit. */
export function historyKey(model: ModelRef, generation: number, commit: string): string {
  return `${historyPrefix(model)}${String(generation).padStart(12, "0")}-${commit}`;
}

/** Generation and commit id of a history key, or undefined. */
export function parseHistoryKey(
  model: ModelRef,
  key: string,
): { generation: number; commit: string } | undefined {
  const prefix = historyPrefix(model);
  if (!key.startsWith(prefix)) return undefined;
  const m = /^(\d{12})-([0-9a-f]{16,64})$/.exec(key.slice(prefix.length));
  return m === null ? undefined : { generation: Number(m[1]), commit: m[2] };
}

/** Every record under `prefix`, following the provider's pages. */
export async function listAllRecords(
  p: Pick<Provider, "listRecords">,
  prefix: string,
  opts: ListOptions = {},
): Promise<RecordListing[]> {
  const out: RecordListing[] = [];
  let cursor: string | undefined;
  for (let page = 0;; page++) {
    const got = await p.listRecords(prefix, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(cursor === undefined ? {} : { cursor }),
    });
    for (const r of got.items) if (r.key.startsWith(prefix)) out.push(r);
    if (got.cursor === undefined || got.cursor === cursor || got.items.length === 0) return out;
    cursor = got.cursor;
    if (page > 1_000_000) return out;
  }
}
