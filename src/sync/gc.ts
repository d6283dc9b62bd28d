/**
 * `gc [--grace DUR] [--keep N | --keep-within DUR] [--dry-run]`: removes
 * history records no policy keeps and blobs no kept generation names
 * (design/history.md).
 *
 * Under the global lock (after the drain, so no push is between reading its
 * head and its commit; pushes upload before they take their locks), in this
 * order:
 *
 * 1. list the blobs (a blob stored after this listing is never a candidate);
 * 2. list heads and history records, walk each model's chain from its head
 *    and decide what is kept: every head; the `--keep N` newest or those
 *    committed `--keep-within DUR` (neither option: every generation); every
 *    generation whose successor was committed within the grace period (a
 *    pull that read it as the head moments ago may still be downloading its
 *    blobs: pull takes no lock); and everything newer than the oldest kept,
 *    so a kept history is one unbroken chain. History records not reachable
 *    from the head (a commit that lost its race, or whose process died
 *    before moving the head) are orphans: kept while younger than the grace
 *    period (a commit in flight), else removed;
 * 3. write the model's pruned record (the oldest generation kept), then
 *    remove history records, oldest first; then move the gc mark to
 *    "removing", remove the blobs that no kept record names and that are
 *    older than the grace period, and move the mark again. A record never
 *    names a missing blob: a push that checked or uploaded a blob before
 *    its lock and meets a moved mark under it asks again and re-uploads
 *    what is gone before it commits (src/model/gc_mark.ts).
 *
 * 4. rewrite, within the same marks, each kept pack that is mostly garbage
 *    (less than half of its bytes named by kept generations) and older than
 *    the grace period: the parts kept generations name become blobs of their
 *    own, then the pack is deleted (readers of a pack that is gone read a
 *    file's own blob).
 *
 * A model whose history cannot be read completely (a corrupt record, a
 * broken parent link) keeps every record, and then no blob is removed at
 * all: an unreadable record may name any blob (exit 6; run `verify`).
 *
 * `--dry-run` takes no lock and removes nothing: it reports what a run
 * would remove now.
 *
 * @module
 */
import { ExitCode, NotFoundError } from "../errors.ts";
import { hashBytes } from "../model/hash.ts";
import { logger } from "../log.ts";
import { getHead, listHeads, type StoredManifest } from "../model/commits.ts";
import { moveGcMark } from "../model/gc_mark.ts";
import { type HistoryEntry, walkHistory, writePruned } from "../model/history.ts";
import { type Manifest, parseManifestText } from "../model/manifest.ts";
import { compareRefs, formatRef, type ModelRef } from "../model/ref.ts";
import { type Lease, LockManager } from "../lock/mod.ts";
import type { BlobListing, Provider, RecordListing } from "../provider/contract.ts";
import {
  HISTORY_PREFIX,
  listAllRecords,
  modelOfHistoryKey,
  parseHistoryKey,
  prunedKey,
} from "../provider/keys.ts";
import { runPool } from "../async.ts";
import { formatDuration } from "../duration.ts";
import { formatBytes } from "./format.ts";
import type { Session } from "./session.ts";

/** Default `--grace`: 24 hours. */
export const DEFAULT_GRACE_MS = 24 * 3_600_000;

/** What gc keeps and how long it waits. */
export interface GcOptions {
  /** Blobs and orphan records younger than this stay. */
  graceMs: number;
  /** Keep the N newest generations of each model (head included). */
  keep?: number;
  /** Keep the generations committed within this many milliseconds. */
  keepWithinMs?: number;
  dryRun: boolean;
}

/** A history record gc removes (or would remove). */
export interface GcRecord {
  model: string;
  generation: number;
  commit: string;
  key: string;
  /** `policy`: older than what --keep/--keep-within keep; `orphan`: not reachable from the head. */
  reason: "policy" | "orphan";
}

/** The `gc` result. */
export interface GcResult {
  schema: "modelsync.gc/1";
  dryRun: boolean;
  /** `global`, or `none` for --dry-run. */
  lockPath: "global" | "none";
  graceMs: number;
  keep: number | null;
  keepWithinMs: number | null;
  models: number;
  kept: {
    generations: number;
    /** Stored blobs that a kept record names. */
    blobs: number;
    /** Unreferenced blobs younger than the grace period. */
    youngBlobs: number;
  };
  removed: { generations: number; orphans: number; blobs: number; bytes: number };
  records: GcRecord[];
  blobs: { hash: string; size: number }[];
  /**
   * Mostly-garbage packs rewritten (or that would be): `live` bytes of their
   * `size` were named by kept generations and became blobs of their own.
   */
  packs: { hash: string; size: number; live: number }[];
  /** Why something was left alone (damaged histories); exit 6 when any. */
  problems: string[];
  /** Not printed in JSON. */
  exitCode: number;
}

/** One model's decision. */
interface ModelPlan {
  model: ModelRef;
  /** Reachable generations removed, oldest first. */
  remove: { entry: HistoryEntry; version: string | undefined }[];
  /** The oldest kept generation, when older ones are removed. */
  oldestKept?: Manifest;
  orphans: { key: string; version: string; generation: number; commit: string }[];
  keptGenerations: number;
}

/** Everything gc decided. */
interface Plan {
  models: ModelPlan[];
  modelCount: number;
  keptHashes: Set<string>;
  blobs: BlobListing[];
  /** Kept packs that are mostly garbage, to rewrite: their live files become blobs of their own. */
  rewrite: PackRewrite[];
  youngBlobs: number;
  keptBlobs: number;
  problems: string[];
}

/** A pack gc rewrites: its parts kept generations name, and their bytes. */
interface PackRewrite {
  hash: string;
  size: number;
  live: number;
  parts: { sha256: string; offset: number; size: number }[];
}

/**
 * A kept pack is rewritten when less than this share of its bytes is named
 * by kept generations (mostly garbage), and it is older than the grace period.
 */
export const REWRITE_LIVE_SHARE = 0.5;

const decoder = new TextDecoder();

/** Runs gc (or plans it, with `dryRun`). */
export async function runGc(s: Session, opts: GcOptions): Promise<GcResult> {
  if (opts.dryRun) return report(opts, await plan(s, opts, s.signal), "none");
  const manager = new LockManager({
    provider: s.provider,
    caps: { ...s.capabilities.caps, scopedSync: false },
    holder: s.identity,
    operation: "gc",
    lockTimeoutMs: s.settings.lockTimeoutMs,
    ttlMs: s.settings.lockTtlMs,
    signal: s.signal,
  });
  try {
    return await manager.runExclusive(async ({ lease, signal }) => {
      const decided = await plan(s, opts, signal);
      await execute(s, decided, { lease, signal });
      return report(opts, decided, "global");
    });
  } finally {
    await manager.releaseAll();
  }
}

async function plan(s: Session, opts: GcOptions, signal: AbortSignal): Promise<Plan> {
  const p = s.provider.provider;
  const nowMs = Date.now();
  const graceCut = nowMs - opts.graceMs;
  // 1. Blobs first: whatever is stored after this listing is no candidate.
  const blobs: BlobListing[] = [];
  for (let cursor: string | undefined, page = 0;; page++) {
    const got = await p.listBlobs({ signal, ...(cursor === undefined ? {} : { cursor }) });
    blobs.push(...got.items);
    if (got.cursor === undefined || got.cursor === cursor || got.items.length === 0) break;
    cursor = got.cursor;
  }
  // 2. Heads and history records, grouped by model.
  const heads = await listHeads(p, { signal });
  const byModel = new Map<string, { model: ModelRef; records: Map<string, RecordListing> }>();
  const group = (model: ModelRef) => {
    const k = formatRef(model);
    let g = byModel.get(k);
    if (g === undefined) byModel.set(k, g = { model, records: new Map() });
    return g;
  };
  for (const h of heads) group(h.model);
  for (const r of await listAllRecords(p, HISTORY_PREFIX, { signal })) {
    const model = modelOfHistoryKey(r.key);
    if (model !== undefined) group(model).records.set(r.key, r);
  }
  const keptHashes = new Set<string>();
  // pack → content hash → where kept generations name it in that pack.
  const packParts = new Map<string, Map<string, { offset: number; size: number }>>();
  const keepFiles = (m: Manifest) => {
    // A packed file keeps its whole pack (and its own hash: the same content
    // may also be a blob of its own, named by another generation).
    for (const f of m.files) {
      keptHashes.add(f.sha256);
      if (f.pack === undefined) continue;
      keptHashes.add(f.pack.blob);
      let parts = packParts.get(f.pack.blob);
      if (parts === undefined) packParts.set(f.pack.blob, parts = new Map());
      parts.set(f.sha256, { offset: f.pack.offset, size: f.size });
    }
  };
  const problems: string[] = [];
  let blockBlobs = false;
  const models: ModelPlan[] = [];
  const groups = [...byModel.values()].sort((a, b) => compareRefs(a.model, b.model));
  await runPool(groups, { jobs: Math.max(1, s.jobs), signal }, async ({ model, records }) => {
    const ref = formatRef(model);
    const commitKeys = [...records.values()].flatMap((r) => {
      const parsed = parseHistoryKey(model, r.key);
      return parsed === undefined ? [] : [{ ...parsed, key: r.key, listing: r }];
    });
    /** Keeps every record of a model gc cannot read completely. */
    const keepAll = async (why: string) => {
      problems.push(`Left ${ref} alone: ${why}. Run "modelsync verify ${ref}".`);
      for (const c of commitKeys) {
        const m = await readManifest(p, model, c.key, signal);
        if (m === null) blockBlobs = true;
        else if (m !== "gone") keepFiles(m);
      }
      models.push({ model, remove: [], orphans: [], keptGenerations: commitKeys.length });
    };
    let head: StoredManifest | null;
    try {
      head = await getHead(p, model, { signal });
    } catch (err) {
      blockBlobs = true;
      await keepAll(`its head does not read back (${(err as Error).message})`);
      return;
    }
    let chain: HistoryEntry[] = [];
    if (head !== null) {
      const walk = await walkHistory(p, model, { head, signal });
      if (walk.end.kind === "missing" || walk.end.kind === "corrupt") {
        await keepAll(
          `its history is broken at generation ${walk.end.generation} (${walk.end.key})`,
        );
        return;
      }
      chain = walk.entries;
    }
    const timeOf = (e: HistoryEntry) => commitTime(e.manifest, records.get(e.key));
    let oldest = chain.length === 0 ? -1 : 0;
    for (let i = 1; i < chain.length; i++) {
      const byPolicy = opts.keep === undefined && opts.keepWithinMs === undefined
        ? true
        : (opts.keep !== undefined && i < opts.keep) ||
          (opts.keepWithinMs !== undefined && timeOf(chain[i]) >= nowMs - opts.keepWithinMs);
      // Its successor replaced it as the head within the grace period: a
      // pull that read it then may still be downloading its blobs.
      const byGrace = timeOf(chain[i - 1]) >= graceCut;
      if (byPolicy || byGrace) oldest = i;
    }
    const kept = chain.slice(0, oldest + 1);
    for (const e of kept) keepFiles(e.manifest);
    const remove = chain.slice(oldest + 1).reverse().map((entry) => ({
      entry,
      version: records.get(entry.key)?.version,
    }));
    const reachable = new Set(chain.map((e) => e.key));
    const orphans: ModelPlan["orphans"] = [];
    for (const c of commitKeys) {
      if (reachable.has(c.key)) continue;
      const m = await readManifest(p, model, c.key, signal);
      if (m === "gone") continue;
      const age = m === null ? c.listing.modifiedMs : commitTime(m, c.listing);
      if (age !== undefined && Number.isFinite(age) && age < graceCut) {
        orphans.push({
          key: c.key,
          version: c.listing.version,
          generation: c.generation,
          commit: c.commit,
        });
      } else if (m === null) {
        // A young record that does not parse: what it names is unknown.
        blockBlobs = true;
        problems.push(`Kept the unreadable history record ${c.key} of ${ref}.`);
      } else keepFiles(m); // a commit in flight, or a race lost moments ago
    }
    models.push({
      model,
      remove,
      ...(remove.length > 0 ? { oldestKept: kept[kept.length - 1].manifest } : {}),
      orphans,
      keptGenerations: kept.length,
    });
  });
  if (blockBlobs) {
    problems.push(
      "Removed no blob: an unreadable record may name any of them. Repair or delete it, then " +
        "rerun gc.",
    );
  }
  // 3. Blobs no kept record names, older than the grace period.
  const unreferenced = blobs.filter((b) => !keptHashes.has(b.hash));
  const old = unreferenced.filter((b) => b.modifiedMs < graceCut);
  // 4. Kept packs that are mostly garbage (and old): rewritten.
  const rewrite: PackRewrite[] = [];
  for (const b of blockBlobs ? [] : blobs) {
    const parts = packParts.get(b.hash);
    if (parts === undefined || b.modifiedMs >= graceCut || b.size === 0) continue;
    const live = [...parts.values()].reduce((n, x) => n + x.size, 0);
    if (live >= b.size * REWRITE_LIVE_SHARE) continue;
    rewrite.push({
      hash: b.hash,
      size: b.size,
      live,
      parts: [...parts].map(([sha256, x]) => ({ sha256, ...x })),
    });
  }
  models.sort((a, b) => compareRefs(a.model, b.model));
  return {
    models,
    modelCount: groups.length,
    keptHashes,
    rewrite,
    blobs: blockBlobs ? [] : old,
    youngBlobs: unreferenced.length - old.length,
    keptBlobs: blobs.length - unreferenced.length,
    problems,
  };
}

/**
 * When a commit happened, for the grace and --keep-within rules: the later
 * of its own `committedAt` and the store's time of its history record, so a
 * committer whose clock runs behind does not make its commit look old.
 * Unknown: now (kept).
 */
function commitTime(m: Manifest, listing: RecordListing | undefined): number {
  const times = [Date.parse(m.committedAt), listing?.modifiedMs ?? NaN].filter(Number.isFinite);
  return times.length === 0 ? Infinity : Math.max(...times);
}

/** A history record's manifest; null when it does not parse, "gone" when it vanished. */
async function readManifest(
  p: Provider,
  model: ModelRef,
  key: string,
  signal: AbortSignal,
): Promise<Manifest | null | "gone"> {
  const rec = await p.getRecord(key, { signal });
  if (rec === null) return "gone";
  try {
    return parseManifestText(decoder.decode(rec.bytes), model, key);
  } catch {
    return null;
  }
}

/** Removes what `plan` decided: pruned records, history records, then blobs. */
async function execute(
  s: Session,
  decided: Plan,
  ctx: { lease: Lease; signal: AbortSignal },
): Promise<void> {
  const p = s.provider.provider;
  const { signal } = ctx;
  for (const m of decided.models) {
    if (m.remove.length === 0 && m.orphans.length === 0) continue;
    await ctx.lease.confirm();
    if (m.oldestKept !== undefined) {
      const current = await p.getRecord(prunedKey(m.model), { signal });
      await writePruned(p, m.model, {
        signal,
        oldestKept: { generation: m.oldestKept.generation, commit: m.oldestKept.commit },
        by: s.identity,
        current: current?.version ?? null,
      });
    }
    for (const r of m.remove) {
      ctx.lease.assertHeld();
      const version = r.version ?? (await p.getRecord(r.entry.key, { signal }))?.version;
      if (version !== undefined) await p.deleteRecord(r.entry.key, version, { signal });
    }
    for (const o of m.orphans) {
      ctx.lease.assertHeld();
      await p.deleteRecord(o.key, o.version, { signal });
    }
  }
  if (decided.blobs.length === 0 && decided.rewrite.length === 0) return;
  await ctx.lease.confirm();
  // The gc mark around the removals: a push that checked or stored blobs
  // before its lock sees it moved and asks again (src/model/gc_mark.ts). A
  // gc that stops in between leaves it saying "removing": pushes keep
  // asking again until the next gc completes.
  await moveGcMark(p, { removing: true, by: s.identity }, { signal });
  await runPool(decided.blobs, { jobs: Math.max(1, s.jobs), signal }, async (b) => {
    ctx.lease.assertHeld();
    await p.deleteBlob(b.hash, { signal });
  });
  for (const pack of decided.rewrite) {
    ctx.lease.assertHeld();
    const problem = await rewritePack(p, pack, signal);
    if (problem !== undefined) decided.problems.push(problem);
  }
  await moveGcMark(p, { removing: false, by: s.identity }, { signal });
}

/**
 * Rewrites a mostly-garbage pack: each part a kept generation names is
 * stored as a blob of its own (named by its content hash, checked), then the
 * pack is deleted. Readers of a pack that is gone read a file's own blob
 * (design/format.md, "Packs"), so the history records that name the pack
 * stay as they are (they are immutable), and a reader finds the content in
 * one place or the other at every moment. A pack that does not hash to its
 * name, or whose part does not match, is left alone and reported.
 */
async function rewritePack(
  p: Provider,
  pack: PackRewrite,
  signal: AbortSignal,
): Promise<string | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(
      await new Response(await p.getBlob(pack.hash, { signal })).arrayBuffer(),
    );
  } catch (err) {
    if (err instanceof NotFoundError) return undefined; // gone meanwhile: nothing to rewrite
    throw err;
  }
  const corrupt = (what: string) =>
    `Left pack ${pack.hash} as it is: ${what}. Run "modelsync verify --read-data" to see ` +
    `which models name it.`;
  if (hashBytes(bytes) !== pack.hash) return corrupt("it does not hash to its name");
  const parts = pack.parts.map((x) => ({
    ...x,
    bytes: bytes.subarray(x.offset, x.offset + x.size),
  }));
  const bad = parts.find((x) => x.bytes.length !== x.size || hashBytes(x.bytes) !== x.sha256);
  if (bad !== undefined) return corrupt(`it does not hold the content of ${bad.sha256}`);
  const have = await p.hasBlobs(parts.map((x) => x.sha256), { signal });
  for (const x of parts) {
    if (have.has(x.sha256)) continue;
    await p.putBlob(x.sha256, { kind: "bytes", bytes: x.bytes }, { signal });
  }
  await p.deleteBlob(pack.hash, { signal });
  return undefined;
}

function report(
  opts: GcOptions,
  decided: Plan,
  lockPath: "global" | "none",
): GcResult {
  const records: GcRecord[] = [];
  for (const m of decided.models) {
    const model = formatRef(m.model);
    for (const r of m.remove) {
      records.push({
        model,
        generation: r.entry.manifest.generation,
        commit: r.entry.manifest.commit,
        key: r.entry.key,
        reason: "policy",
      });
    }
    for (const o of m.orphans) {
      records.push({
        model,
        generation: o.generation,
        commit: o.commit,
        key: o.key,
        reason: "orphan",
      });
    }
  }
  for (const p of decided.problems) logger("sync").error(p);
  return {
    schema: "modelsync.gc/1",
    dryRun: opts.dryRun,
    lockPath,
    graceMs: opts.graceMs,
    keep: opts.keep ?? null,
    keepWithinMs: opts.keepWithinMs ?? null,
    models: decided.modelCount,
    kept: {
      generations: decided.models.reduce((n, m) => n + m.keptGenerations, 0),
      blobs: decided.keptBlobs,
      youngBlobs: decided.youngBlobs,
    },
    removed: {
      generations: records.filter((r) => r.reason === "policy").length,
      orphans: records.filter((r) => r.reason === "orphan").length,
      blobs: decided.blobs.length,
      bytes: decided.blobs.reduce((n, b) => n + b.size, 0),
    },
    records,
    blobs: decided.blobs.map((b) => ({ hash: b.hash, size: b.size })),
    packs: decided.rewrite.map((r) => ({ hash: r.hash, size: r.size, live: r.live })),
    problems: decided.problems,
    exitCode: decided.problems.length > 0 ? ExitCode.datastore : ExitCode.ok,
  };
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Human lines for `gc`: with --dry-run, every record and blob it would remove; then a summary. */
export function formatGc(r: GcResult): string[] {
  const out: string[] = [];
  if (r.dryRun) {
    for (const rec of r.records) {
      out.push(
        rec.reason === "policy"
          ? `would remove  ${rec.model}@${rec.generation}  (not kept by the policy)`
          : `would remove  ${rec.key}  (orphan: not reachable from the head)`,
      );
    }
    for (const b of r.blobs) out.push(`would remove  blob ${b.hash}  ${formatBytes(b.size)}`);
    for (const b of r.packs) {
      out.push(
        `would rewrite pack ${b.hash}  ${formatBytes(b.live)} of ${
          formatBytes(b.size)
        } still named`,
      );
    }
  }
  if (r.packs.length > 0) {
    const freed = r.packs.reduce((n, b) => n + b.size - b.live, 0);
    out.push(
      `${r.dryRun ? "Would rewrite" : "Rewrote"} ${
        plural(r.packs.length, "mostly-garbage pack")
      }: the files kept generations name in ${r.packs.length === 1 ? "it" : "them"} ${
        r.dryRun ? "would become" : "became"
      } blobs of their own (${formatBytes(freed)} ${r.dryRun ? "to free" : "freed"}).`,
    );
  }
  const verb = r.dryRun ? "Would remove" : "Removed";
  out.push(
    `${verb} ${plural(r.removed.generations, "generation")} and ${
      plural(r.removed.orphans, "orphan record")
    }, and ${plural(r.removed.blobs, "blob")} (${formatBytes(r.removed.bytes)}${
      r.dryRun ? "" : " freed"
    }). Kept ${plural(r.kept.generations, "generation")} of ${plural(r.models, "model")} and ${
      plural(r.kept.blobs, "blob")
    }; ${plural(r.kept.youngBlobs, "unreferenced blob")} within the ${
      formatDuration(r.graceMs)
    } grace period ${r.kept.youngBlobs === 1 ? "stays" : "stay"}.`,
  );
  return out;
}
