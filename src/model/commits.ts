/**
 * Commits and history over a provider's records (datastore format 2,
 * design/format.md), written once for every datastore.
 *
 * A commit writes the new manifest as an immutable history record
 * `history/TYPE/ID/GGGGGGGGGGGG-COMMIT` (create-if-absent), then moves the
 * model's head `heads/TYPE/ID` to the same bytes by compare-and-swap on the
 * head's version. A lost race leaves an unreferenced history record (gc
 * removes it) and never overwrites the winner. Each manifest names its
 * parent commit, so the history of a model is the chain from its head.
 *
 * @example
 * ```ts ignore
 * import { commitManifest, getHead } from "./commits.ts";
 * const head = await getHead(provider, model);
 * await commitManifest(provider, model, head, makeManifest(model, 1, files, me));
 * ```
 * @module
 */
import { ConflictError, CorruptError, DatastoreError } from "../errors.ts";
import type { CallOptions, Provider } from "../provider/contract.ts";
import {
  headKey,
  HEADS_PREFIX,
  historyKey,
  historyPrefix,
  listAllRecords,
  modelOfHeadKey,
  parseHistoryKey,
} from "../provider/keys.ts";
import { assertCommitArgs, type Manifest, parseManifestText } from "./manifest.ts";
import { formatRef, type ModelRef } from "./ref.ts";

/** One model in a listing of heads: its ref and the head's opaque version token. */
export interface ManifestListing {
  model: ModelRef;
  /** Changes whenever a new commit moves the head; compared with the base's token. */
  version: string;
}

/** A manifest with the version token of the record it was read from. */
export interface StoredManifest {
  manifest: Manifest;
  version: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Every model with a head and its version token, without reading bodies. */
export async function listHeads(p: Provider, opts: CallOptions = {}): Promise<ManifestListing[]> {
  const out: ManifestListing[] = [];
  for (const r of await listAllRecords(p, HEADS_PREFIX, opts)) {
    const model = modelOfHeadKey(r.key);
    if (model !== undefined) out.push({ model, version: r.version });
  }
  return out;
}

/** The model's head, or null when it was never committed. Throws `CorruptError`. */
export async function getHead(
  p: Provider,
  model: ModelRef,
  opts: CallOptions = {},
): Promise<StoredManifest | null> {
  const key = headKey(model);
  const rec = await p.getRecord(key, opts);
  if (rec === null) return null;
  return {
    manifest: parseManifestText(decoder.decode(rec.bytes), model, key),
    version: rec.version,
  };
}

/**
 * Commits `manifest` on top of `expected` (the head as read, or null when
 * the model has none): only if the head is still `expected`. The manifest's
 * generation must be above the expected one; its parent is set here. Throws
 * `ConflictError` carrying the current generation on a lost race.
 */
export async function commitManifest(
  p: Provider,
  model: ModelRef,
  expected: StoredManifest | null,
  draft: Manifest,
  opts: CallOptions = {},
): Promise<{ version: string; manifest: Manifest }> {
  const manifest: Manifest = {
    ...draft,
    parent: expected === null
      ? null
      : { generation: expected.manifest.generation, commit: expected.manifest.commit },
  };
  assertCommitArgs(model, expected?.manifest.generation ?? 0, manifest);
  const bytes = encoder.encode(JSON.stringify(manifest));
  const hk = historyKey(model, manifest.generation, manifest.commit);
  if ((await p.createRecord(hk, bytes, opts)) === null) {
    // Commit ids are random: only our own earlier attempt can have made it.
    const again = await p.getRecord(hk, opts);
    if (again === null || decoder.decode(again.bytes) !== decoder.decode(bytes)) {
      throw new DatastoreError(
        `History record ${hk} already exists with other content; retry the push.`,
      );
    }
  }
  const head = headKey(model);
  const version = expected === null
    ? await p.createRecord(head, bytes, opts)
    : await p.replaceRecord(head, bytes, expected.version, opts);
  if (version === null) {
    const current = await getHead(p, model, opts).catch(() => null);
    throw new ConflictError(
      `Cannot commit ${formatRef(model)}: another writer committed generation ` +
        `${current?.manifest.generation ?? "?"} first.`,
      current === null ? {} : { current: current.manifest.generation },
    );
  }
  return { version, manifest };
}

/** One generation in a model's history. */
export interface HistoryEntry {
  manifest: Manifest;
  /** The history record's key. */
  key: string;
}

/**
 * A model's history from its head back to its first commit (or to the
 * oldest one `gc` kept), newest first. `head` may be given when already read.
 */
export async function* history(
  p: Provider,
  model: ModelRef,
  opts: CallOptions & { head?: StoredManifest | null } = {},
): AsyncGenerator<HistoryEntry> {
  const head = opts.head !== undefined ? opts.head : await getHead(p, model, opts);
  if (head === null) return;
  let m: Manifest | null = head.manifest;
  const seen = new Set<string>();
  while (m !== null) {
    if (seen.has(m.commit)) {
      throw new CorruptError(
        `History of ${formatRef(model)} loops at commit ${m.commit}; refusing it as corrupt.`,
      );
    }
    seen.add(m.commit);
    yield { manifest: m, key: historyKey(model, m.generation, m.commit) };
    const parent: Manifest["parent"] = m.parent;
    if (parent === null) return;
    if (parent.generation >= m.generation) {
      throw new CorruptError(
        `History of ${formatRef(model)}: generation ${m.generation} names a parent ` +
          `${parent.generation} that is not older; refusing it as corrupt.`,
      );
    }
    const key = historyKey(model, parent.generation, parent.commit);
    const rec = await p.getRecord(key, opts);
    m = rec === null ? null : parseManifestText(decoder.decode(rec.bytes), model, key);
  }
}

/** The history record keys of a model (reachable or not), with generation and commit id. */
export async function listHistoryKeys(
  p: Provider,
  model: ModelRef,
  opts: CallOptions = {},
): Promise<{ key: string; generation: number; commit: string; modifiedMs?: number }[]> {
  const out = [];
  for (const r of await listAllRecords(p, historyPrefix(model), opts)) {
    const parsed = parseHistoryKey(model, r.key);
    if (parsed !== undefined) {
      out.push({
        key: r.key,
        ...parsed,
        ...(r.modifiedMs === undefined ? {} : { modifiedMs: r.modifiedMs }),
      });
    }
  }
  return out;
}
