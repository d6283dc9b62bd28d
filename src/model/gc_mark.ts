/**
 * The gc mark (`gc`, datastore format 2, design/format.md): one record that
 * `gc` replaces right before it removes blobs (`removing: true`) and again
 * once it is done (`removing: false`). Its version token changes on every
 * write and never repeats, so it tells a push that stored blobs before its
 * lock whether a gc removed blobs since (design/sync.md, design/history.md):
 *
 * 1. the push reads the mark, then checks and uploads its blobs (no lock);
 * 2. under its lock it reads the mark again. If the version changed, or the
 *    first read already said `removing` (a gc was removing blobs then, or
 *    died doing it), {@linkcode gcMarkMoved} is true and the push asks the
 *    store again (`hasBlobs(…, {fresh: true})`) about every blob it did not
 *    just see named by the head, re-uploading what is gone.
 *
 * gc removes blobs only under the global lock after the drain, and a push
 * reads the mark the second time under its own lock, so every removal that
 * can make the push's first answers stale happened between its two reads.
 *
 * @example
 * ```ts ignore
 * import { gcMarkMoved, readGcMark } from "./gc_mark.ts";
 * const before = await readGcMark(provider);
 * // ... upload, then take the lock ...
 * if (gcMarkMoved(before, await readGcMark(provider))) {
 *   // ask again with { fresh: true }
 * }
 * ```
 * @module
 */
import { DatastoreError } from "../errors.ts";
import type { CallOptions, Provider } from "../provider/contract.ts";
import { GC_MARK_KEY } from "../provider/keys.ts";
import type { Committer } from "./manifest.ts";

/** The gc mark as read. */
export interface GcMark {
  /** The record's version token; null while no gc ever removed a blob. */
  version: string | null;
  /**
   * True when the mark says a gc is removing blobs (or died doing it), and
   * for a mark that does not parse: either way, answers read after it may
   * go stale.
   */
  removing: boolean;
}

/** The body of the record. */
interface GcMarkRecord {
  format: 2;
  removing: boolean;
  at: string;
  by: Committer;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Reads the gc mark (one `getRecord`). */
export async function readGcMark(
  p: Pick<Provider, "getRecord">,
  opts: CallOptions = {},
): Promise<GcMark> {
  const rec = await p.getRecord(GC_MARK_KEY, opts);
  if (rec === null) return { version: null, removing: false };
  return { version: rec.version, removing: removingOf(rec.bytes) };
}

function removingOf(bytes: Uint8Array): boolean {
  try {
    const data = JSON.parse(decoder.decode(bytes)) as Partial<GcMarkRecord> | null;
    return data?.removing !== false;
  } catch {
    return true;
  }
}

/**
 * True when blobs may have been removed between reading `before` and
 * reading `after`: the mark was rewritten, or a removal was under way
 * (or never finished) when `before` was read.
 */
export function gcMarkMoved(before: GcMark, after: GcMark): boolean {
  return before.version !== after.version || before.removing;
}

/**
 * Writes the gc mark (`removing` before gc removes blobs, then not), by
 * compare-and-swap on the version read just before. Only gc writes it,
 * under the global lock; a lost race (a gc that took over a stale lock
 * while the old one still wrote) is retried on what is there now.
 */
export async function moveGcMark(
  p: Pick<Provider, "getRecord" | "createRecord" | "replaceRecord">,
  mark: { removing: boolean; by: Committer },
  opts: CallOptions = {},
): Promise<void> {
  const record: GcMarkRecord = {
    format: 2,
    removing: mark.removing,
    at: new Date().toISOString(),
    by: mark.by,
  };
  const bytes = encoder.encode(JSON.stringify(record) + "\n");
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await p.getRecord(GC_MARK_KEY, opts);
    const done = current === null
      ? await p.createRecord(GC_MARK_KEY, bytes, opts)
      : await p.replaceRecord(GC_MARK_KEY, bytes, current.version, opts);
    if (done !== null) return;
  }
  throw new DatastoreError(
    `The gc mark (${GC_MARK_KEY}) kept changing while gc wrote it (is another gc running ` +
      `without the global lock?). Rerun gc.`,
  );
}
