/**
 * Moving blobs: uploads of local files that the datastore lacks, and landing
 * remote files in the working tree (download to tmp, verify, rename).
 *
 * @module
 */
import { listPaths } from "./format.ts";
import path from "node:path";
import { ConflictError, CorruptError, isRetryable, NotFoundError } from "../errors.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import { writeLanding } from "../model/landing.ts";
import { joinRel } from "../model/path.ts";
import {
  assertNamesFit,
  bytesToTmp,
  type DirId,
  downloadToTmp,
  placeFile,
  placeLink,
  removeFile,
} from "../repo/apply.ts";
import { type Entry, lstatEntry } from "../repo/entry.ts";
import {
  isPackable,
  PACK_TARGET_BYTES,
  PackBuilder,
  type PackLocation,
  packSpans,
} from "../model/pack.ts";
import { oneChunkStream, readCheckedSource } from "../provider/blob_source.ts";
import type { FileState } from "./three_way.ts";
import { fileDirClashes } from "./states.ts";
import { Backoff, runPool, sleep } from "../async.ts";
import type { PackWorkers } from "./pack_pool.ts";
import type { Progress } from "./progress.ts";
import type { RepoSession } from "./session.ts";

/** A local file to upload. */
export interface UploadItem {
  sha256: string;
  size: number;
  /** Absolute path of the local file. */
  file: string;
}

/** Counts of what moved. */
export interface Moved {
  files: number;
  bytes: number;
}

/** Each session's data folder, joined once (a landing asks for its model's directory per file). */
const dataRoots = new WeakMap<RepoSession, string>();

/** Absolute directory of a model in the working tree. */
export function modelDir(s: RepoSession, model: ModelRef): string {
  let root = dataRoots.get(s);
  if (root === undefined) dataRoots.set(s, root = path.join(s.repoDir, s.config.dataDir));
  // A model ref's segments are checked names: nothing to normalise.
  return joinRel(root, `${model.type}/${model.id}`);
}

/** What an upload stored. */
export interface Uploaded extends Moved {
  /** Content hash → pack location of each file this upload packed. */
  packed: Map<string, PackLocation>;
  /**
   * Pack blobs that `stored` named for this upload's content but the
   * datastore no longer has: that content was uploaded again, so no commit
   * names those packs for it.
   */
  lostPacks: Set<string>;
  /** Content the datastore already had as blobs of their own: nothing was sent for it. */
  found: Set<string>;
  /** Content this upload stored as blobs of their own. */
  own: Set<string>;
}

/** Hashes per `hasBlobs` call with `fresh` (one request each on S3: a call's deadline must fit). */
const FRESH_BATCH = 1_000;

/** Pack uploads at once: each holds up to a pack (16 MiB) in memory. */
const PACK_WRITE_JOBS = 2;

/**
 * Uploads the content the datastore does not have yet, each once: files up
 * to 512 KiB (`isPackable`) into packs of up to 16 MiB (in the order given,
 * so a model's files lie together), larger ones as blobs of their own, in a
 * rolling pool of `s.jobs`.
 *
 * What is there already is asked by blob, not per file: content `stored` in
 * a pack (a location the head names) needs its pack to exist, one check per
 * pack; content the head names as a blob of its own (`named`), and every
 * file too large to pack, needs that blob. New small content is packed
 * without asking (on S3 a question per file is a request per file). Content
 * whose pack or blob is gone is uploaded again (into a new pack when it is
 * small), so a push also repairs what it depends on. Content in `present`
 * (found or stored as blobs of their own before, by a push before its lock)
 * is neither asked about nor sent. `fresh` asks the store itself whether
 * each blob is there, not a provider's memory of earlier answers (after a gc
 * may have removed blobs). With `pack: false` nothing is packed (the remedy
 * for a lost pack stores blobs of their own, which readers fall back to).
 * Returns what was uploaded, where packed content went, and what was there
 * already.
 */
export async function uploadMissing(
  s: RepoSession,
  items: readonly UploadItem[],
  opts: {
    signal: AbortSignal;
    progress: Progress;
    stored?: ReadonlyMap<string, PackLocation>;
    named?: ReadonlySet<string>;
    present?: ReadonlySet<string>;
    pack?: boolean;
    fresh?: boolean;
    /** Worker threads that build the packs (else they are built here). */
    packer?: PackWorkers;
  },
): Promise<Uploaded> {
  const unique = new Map<string, UploadItem>();
  for (const it of items) {
    if (unique.has(it.sha256) || opts.present?.has(it.sha256)) continue;
    unique.set(it.sha256, it);
  }
  const packed = new Map<string, PackLocation>();
  const lostPacks = new Set<string>();
  const found = new Set<string>();
  const stored = new Set<string>();
  if (unique.size === 0) return { files: 0, bytes: 0, packed, lostPacks, found, own: stored };
  const packs = opts.pack !== false;
  const blobFor = (it: UploadItem): string | undefined => {
    const at = opts.stored?.get(it.sha256);
    if (at !== undefined) return at.blob;
    if (packs && isPackable(it.size) && !opts.named?.has(it.sha256)) return undefined; // new: packed
    return it.sha256;
  };
  const asked = [...new Set([...unique.values()].map(blobFor).filter((h) => h !== undefined))];
  let present: Set<string>;
  if (asked.length === 0) present = new Set();
  else if (opts.fresh) {
    present = new Set();
    for (let i = 0; i < asked.length; i += FRESH_BATCH) {
      const batch = asked.slice(i, i + FRESH_BATCH);
      for (const h of await s.provider.hasBlobs(batch, { signal: opts.signal, fresh: true })) {
        present.add(h);
      }
    }
  } else {
    present = await s.provider.hasBlobs(asked, { signal: opts.signal });
  }
  const missing = [...unique.values()].filter((it) => {
    const blob = blobFor(it);
    if (blob !== undefined && present.has(blob)) {
      if (blob === it.sha256) found.add(it.sha256);
      return false;
    }
    if (blob !== undefined && opts.stored?.has(it.sha256)) {
      lostPacks.add(blob); // its content is uploaded again: no commit names this pack for it
    }
    return true;
  });
  let bytes = 0;
  opts.progress.addTotal(missing.length, missing.reduce((n, it) => n + it.size, 0));
  const signal = opts.signal;
  // In path order, so a model's files lie in its packs as in its directories.
  const packing = packs
    ? missing.filter((it) => isPackable(it.size)).sort((a, b) =>
      a.file < b.file ? -1 : a.file > b.file ? 1 : 0
    )
    : [];
  const own = packing.length === 0 ? missing : missing.filter((it) => !isPackable(it.size));
  const groups: UploadItem[][] = [];
  let size = PACK_TARGET_BYTES;
  for (const it of packing) {
    if (size + it.size > PACK_TARGET_BYTES) {
      groups.push([]);
      size = 0;
    }
    groups[groups.length - 1].push(it);
    size += it.size;
  }
  await Promise.all([
    runPool(groups, { jobs: Math.min(s.jobs, PACK_WRITE_JOBS), signal }, async (group) => {
      const built = await opts.packer?.build(group, signal);
      if (built) {
        opts.progress.advance(group.length, built.size);
        await s.provider.putBlob(built.sha256, { kind: "bytes", bytes: built.bytes }, { signal });
        group.forEach((it, i) =>
          packed.set(it.sha256, { blob: built.sha256, offset: built.offsets[i] })
        );
        bytes += built.size;
        return;
      }
      const builder = new PackBuilder();
      const offsets: number[] = [];
      for (const it of group) {
        if (performance.now() - lastBreath >= BREATHE_EVERY_MS) await breathe();
        // Checked against the scan's hash and size: a file changed since is
        // refused (exit 4), as a blob of its own would be.
        const tracked = opts.progress.track(it.size);
        const content = await readCheckedSource(it.sha256, {
          kind: "file",
          path: it.file,
          size: it.size,
        });
        offsets.push(builder.add(it.sha256, content));
        // Progress counts what is read, as a blob of its own counts what its put reads.
        tracked.done();
      }
      const pack = builder.finish();
      await s.provider.putBlob(pack.sha256, { kind: "bytes", bytes: pack.bytes }, { signal });
      group.forEach((it, i) => packed.set(it.sha256, { blob: pack.sha256, offset: offsets[i] }));
      bytes += builder.size;
    }),
    runPool(own, { jobs: s.jobs, signal }, async (it) => {
      if (performance.now() - lastBreath >= BREATHE_EVERY_MS) await breathe();
      const tracked = opts.progress.track(it.size);
      await s.provider.putBlob(it.sha256, {
        kind: "file",
        path: it.file,
        size: it.size,
        onRead: tracked.bytes,
      }, { signal });
      tracked.done();
      bytes += it.size;
      stored.add(it.sha256);
    }),
  ]);
  return { files: missing.length, bytes, packed, lostPacks, found, own: stored };
}

/** Reads of packs at once: each holds up to a span (16 MiB) in memory. */
const PACK_READ_JOBS = 4;

/**
 * Downloads packed files (`paths`, each with a `pack` location in `remote`)
 * into `.modelsync/tmp`: one read per span of a pack (design/format.md,
 * "Packs"), by byte range where the provider offers ranged reads, else one
 * read of each whole pack; each file's bytes are hash-checked before they
 * are written, as a download of a blob of its own is. Calls `landed` per
 * file written.
 */
async function fetchPacked(
  s: RepoSession,
  model: ModelRef,
  paths: readonly string[],
  opts: {
    remote: ReadonlyMap<string, FileState>;
    signal: AbortSignal;
    progress: Progress;
    landed: (path: string, tmp: string) => void;
  },
): Promise<void> {
  if (paths.length === 0) return;
  const ranged = s.capabilities.caps.rangedReads;
  const where = (p: string) => {
    const st = opts.remote.get(p)!;
    // Without ranged reads a span is a whole pack: read once, whatever it holds.
    return ranged
      ? { blob: st.pack!.blob, offset: st.pack!.offset, length: st.size }
      : { blob: st.pack!.blob, offset: 0, length: 0 };
  };
  const spans = packSpans(paths, where);
  const jobs = Math.min(s.jobs, PACK_READ_JOBS);
  await runPool(spans, { jobs, signal: opts.signal }, async (span) => {
    const bytes = await readPackSpan(s, span, { ranged, signal: opts.signal });
    for (const p of span.items) {
      opts.signal.throwIfAborted();
      const st = opts.remote.get(p)!;
      const from = st.pack!.offset - (ranged ? span.offset : 0);
      const what = { model, path: p };
      const tracked = opts.progress.track(st.size);
      // A pack that is gone: the file's content as a blob of its own (what
      // "modelsync push" of the model stores again to repair a lost pack).
      const written = bytes === null
        ? downloadToTmp(s.repoDir, await ownBlob(s, model, p, st, opts.signal), st, {
          signal: opts.signal,
          what,
        })
        : bytesToTmp(
          s.repoDir,
          from >= 0 && from + st.size <= bytes.length
            ? bytes.subarray(from, from + st.size)
            : bytes.subarray(0, 0), // outside what the pack holds: the hash check refuses it
          st,
          { what },
        );
      const tmp = await written.catch((err) => {
        if (bytes === null || !(err instanceof CorruptError)) throw err;
        // The pack's part is not the content the manifest names for this file.
        throw new CorruptError(
          `Pack ${st.pack!.blob} in the datastore does not hold the content the manifest of ` +
            `${formatRef(model)} names for ${p} (a corrupt pack, or a manifest written wrong); ` +
            `nothing was written. Run "modelsync verify --read-data ${formatRef(model)}", then ` +
            `push the model again from a repository that has the file.`,
          { cause: err },
        );
      });
      tracked.done();
      opts.landed(p, tmp);
    }
  });
}

/** The bytes of one span of a pack (a whole pack without ranged reads); null when it is gone. */
async function readPackSpan(
  s: RepoSession,
  span: { blob: string; offset: number; length: number },
  opts: { ranged: boolean; signal: AbortSignal },
): Promise<Uint8Array | null> {
  try {
    return await afterBodyStarts(opts.signal, async (started) => {
      const stream = await s.provider.getBlob(span.blob, {
        signal: opts.signal,
        ...(opts.ranged ? { range: { offset: span.offset, length: span.length } } : {}),
      });
      started();
      return new Uint8Array(await new Response(stream).arrayBuffer());
    });
  } catch (err) {
    if (err instanceof NotFoundError) return null;
    throw err;
  }
}

/** Tries of one download whose body failed part-way (a reset, a stall past the idle deadline). */
const DOWNLOAD_ATTEMPTS = 3;

/**
 * Runs a download again from the start when its body fails part-way with a
 * transient fault, up to {@linkcode DOWNLOAD_ATTEMPTS} tries with backoff.
 * The guard (src/provider/guard.ts) retries a call only until its body
 * starts; `download` calls `started()` then, and a fault before it is not
 * retried here again.
 */
async function afterBodyStarts<T>(
  signal: AbortSignal,
  download: (started: () => void) => Promise<T>,
): Promise<T> {
  const backoff = new Backoff({ initialMs: 200, maxMs: 2_000 });
  for (let attempt = 1;; attempt++) {
    let began = false;
    try {
      return await download(() => (began = true));
    } catch (err) {
      if (!began || attempt >= DOWNLOAD_ATTEMPTS || signal.aborted || !isRetryable(err)) throw err;
      await sleep(backoff.next(), signal);
    }
  }
}

/** The blob of a file's own content; a missing one is a corrupt datastore (exit 6). */
async function ownBlob(
  s: RepoSession,
  model: ModelRef,
  p: string,
  st: FileState,
  signal: AbortSignal,
): Promise<ReadableStream<Uint8Array>> {
  try {
    return await s.provider.getBlob(st.sha256, { signal });
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    const where = st.pack === undefined
      ? `no blob ${st.sha256}`
      : `neither pack ${st.pack.blob} nor blob ${st.sha256}`;
    throw new CorruptError(
      `The datastore has ${where} for ${p} of ${formatRef(model)}, although its manifest ` +
        `names it; nothing was written. Push ${formatRef(model)} again from a repository ` +
        `that has the file.`,
      { cause: err },
    );
  }
}

/**
 * The content of one remote file state, as a stream: its blob, or its part
 * of a pack (by range where the provider offers ranged reads, else cut from
 * the whole pack). Not hash-checked here: the reader checks it.
 */
export async function openContent(
  s: RepoSession,
  st: FileState,
  opts: { signal: AbortSignal },
): Promise<ReadableStream<Uint8Array>> {
  if (st.pack === undefined) return await s.provider.getBlob(st.sha256, opts);
  const ranged = s.capabilities.caps.rangedReads;
  const { blob, offset } = st.pack;
  const bytes = await readPackSpan(s, { blob, offset, length: st.size }, {
    ranged,
    signal: opts.signal,
  });
  // A pack that is gone: the content as a blob of its own, if it is one (else NotFound).
  if (bytes === null) return await s.provider.getBlob(st.sha256, opts);
  return oneChunkStream(ranged ? bytes : bytes.subarray(offset, offset + st.size));
}

/** Downloads from this size up report progress chunk by chunk. */
const STREAM_PROGRESS_BYTES = 1024 * 1024;

/** Passes `body` through, reporting each chunk's size to `onBytes` (download progress). */
function counted(
  body: ReadableStream<Uint8Array>,
  onBytes: (n: number) => void,
): ReadableStream<Uint8Array> {
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctrl) {
        onBytes(chunk.byteLength);
        ctrl.enqueue(chunk);
      },
    }),
  );
}

/** How long uploads that never wait for I/O may hold the event loop. */
const BREATHE_EVERY_MS = 50;
let lastBreath = performance.now();

/**
 * Awaited before an upload when 50 ms passed since the last time: yields to
 * the event loop (timers, such as lease renewals). A provider may
 * complete small calls synchronously (the filesystem one on a local disk),
 * and a pool of such calls would otherwise run as one long chain of
 * microtasks in which no timer fires.
 */
async function breathe(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  lastBreath = performance.now();
}

/** What landing remote states did: new mtimes of written files, and counts. */
export interface Landed extends Moved {
  /** path → landed mtimeMs, for files written. */
  mtimes: Map<string, number>;
}

/**
 * Makes the working tree match `remote` at `paths`: downloads present states
 * (hash-checked into .modelsync/tmp, then renamed into place), makes links
 * (no download: the target is in the manifest) and removes absent ones.
 * Every download completes before anything is placed, so a failed transfer
 * changes no local file.
 */
export async function landRemote(
  s: RepoSession,
  model: ModelRef,
  opts: {
    paths: readonly string[];
    remote: ReadonlyMap<string, FileState>;
    /** What the scan saw at each path (absent = no file); a path that changed since is not touched. */
    expectLocal: ReadonlyMap<string, { size: number; mtimeMs: number }>;
    signal: AbortSignal;
    progress: Progress;
    /**
     * Runs once every download is verified and the affected paths are
     * checked unchanged, before anything is removed or replaced (a pull with
     * --theirs saves the local versions here).
     */
    beforeChange?: () => Promise<void>;
  },
): Promise<Landed> {
  const writes = opts.paths.filter((p) => opts.remote.has(p));
  const removes = opts.paths.filter((p) => !opts.remote.has(p));
  const blobs = writes.filter((p) => opts.remote.get(p)!.link === undefined);
  await assertNamesFit(s.repoDir, model, { paths: writes, dataDir: s.config.dataDir });
  opts.progress.addTotal(blobs.length, blobs.reduce((n, p) => n + opts.remote.get(p)!.size, 0));
  // Downloads not yet renamed into place: removed at the end, whatever happened.
  const tmpFiles = new Set<string>();
  let bytes = 0;
  try {
    const fetched = new Map<string, string>();
    const packed = blobs.filter((p) => opts.remote.get(p)!.pack !== undefined);
    const own = packed.length === 0 ? blobs : blobs.filter((p) => !opts.remote.get(p)!.pack);
    await fetchPacked(s, model, packed, {
      remote: opts.remote,
      signal: opts.signal,
      progress: opts.progress,
      landed: (p, tmp) => {
        tmpFiles.add(tmp);
        fetched.set(p, tmp);
        bytes += opts.remote.get(p)!.size;
      },
    });
    const downloads = await runPool(own, { jobs: s.jobs, signal: opts.signal }, async (p) => {
      const st = opts.remote.get(p)!;
      const tracked = opts.progress.track(st.size);
      const tmp = await afterBodyStarts(opts.signal, async (started) => {
        const stream = await ownBlob(s, model, p, st, opts.signal);
        started();
        // Small files complete at once: only large ones are counted as they stream.
        const body = st.size >= STREAM_PROGRESS_BYTES ? counted(stream, tracked.bytes) : stream;
        return await downloadToTmp(s.repoDir, body, st, {
          signal: opts.signal,
          what: { model, path: p },
        });
      });
      tracked.done();
      tmpFiles.add(tmp);
      bytes += st.size;
      return tmp;
    });
    own.forEach((p, i) => fetched.set(p, downloads[i]));
    opts.signal.throwIfAborted();
    await assertUntouched(s, model, opts.paths, opts.expectLocal);
    await opts.beforeChange?.();
    // Journal first: a kill from here on leaves files that the next sync
    // recognises as its own writes (src/model/landing.ts).
    await writeLanding(
      s.repoDir,
      model,
      new Map(opts.paths.map((p) => [p, opts.remote.get(p) ?? null])),
    );
    // Removals before writes, so a directory that becomes a file (or a file
    // that becomes a directory) is out of the way when the new one lands.
    // Each path is checked again right before it is touched: a user edit
    // made while earlier files landed is never overwritten (the window left
    // is one lstat to one rename).
    for (const p of removes) {
      await assertUntouched(s, model, [p], opts.expectLocal);
      await removeFile(s.repoDir, model, p, { dataDir: s.config.dataDir });
    }
    const mtimes = new Map<string, number>();
    const knownDirs = new Set<string>();
    const verifiedDirs = new Map<string, DirId>();
    for (let i = 0; i < writes.length; i++) {
      const st = opts.remote.get(writes[i])!;
      await assertUntouched(s, model, [writes[i]], opts.expectLocal);
      const landed = st.link === undefined
        ? await placeFile(
          s.repoDir,
          model,
          { path: writes[i], executable: st.executable },
          fetched.get(writes[i])!,
          { dataDir: s.config.dataDir, knownDirs, verifiedDirs },
        )
        : await placeLink(s.repoDir, model, { path: writes[i], link: st.link }, {
          dataDir: s.config.dataDir,
        });
      if (st.link === undefined) tmpFiles.delete(fetched.get(writes[i])!);
      mtimes.set(writes[i], landed.mtimeMs);
    }
    return { files: writes.length + removes.length, bytes, mtimes };
  } finally {
    await Promise.all([...tmpFiles].map((t) => Deno.remove(t).catch(() => {})));
  }
}

/**
 * True when the directory `abs` (model path `rel`) holds only files the plan
 * removes, so the removals leave it empty and prune it.
 */
async function emptiedByRemovals(
  abs: string,
  rel: string,
  removes: ReadonlySet<string>,
): Promise<boolean> {
  let any = false;
  for await (const e of Deno.readDir(abs)) {
    any = true;
    const childRel = `${rel}/${e.name}`;
    if (e.isDirectory) {
      if (!(await emptiedByRemovals(path.join(abs, e.name), childRel, removes))) return false;
    } else if (!removes.has(childRel)) {
      return false;
    }
  }
  return any;
}

/**
 * The paths at which landing `paths` from `remote` would need a file where
 * a directory is, or a directory where a file is: a local file (synced,
 * excluded or skipped) in the way of a remote directory, or a local
 * directory in the way of a remote file. Found while planning, before
 * anything is removed or written; sorted.
 */
export async function landingClashes(
  s: RepoSession,
  model: ModelRef,
  opts: {
    paths: readonly string[];
    remote: ReadonlyMap<string, FileState>;
    local: ReadonlyMap<string, FileState>;
  },
): Promise<string[]> {
  const after = new Map(opts.local);
  for (const p of opts.paths) {
    const st = opts.remote.get(p);
    if (st === undefined) after.delete(p);
    else after.set(p, st);
  }
  const out = new Set(fileDirClashes(after));
  const removes = new Set(opts.paths.filter((p) => !opts.remote.has(p)));
  const dir = modelDir(s, model);
  // Each parent directory is looked up once for all the files under it.
  const parents = new Map<string, Entry | null>();
  const parentEntry = (rel: string) => {
    let info = parents.get(rel);
    if (info === undefined) parents.set(rel, info = lstatEntry(joinRel(dir, rel)));
    return info;
  };
  for (const p of opts.paths) {
    if (!opts.remote.has(p)) continue;
    const segs = p.split("/");
    let blocked = false;
    let absent = false;
    for (let i = 1; i < segs.length; i++) {
      const parent = segs.slice(0, i).join("/");
      const info = parentEntry(parent);
      if (info === null) {
        absent = true;
        break;
      }
      if (info.isDirectory) continue;
      if (!removes.has(parent)) out.add(parent);
      blocked = true;
      break;
    }
    if (blocked || absent) continue; // nothing can be at a path whose parent is not there
    const info = lstatEntry(joinRel(dir, p));
    if (info?.isDirectory && !(await emptiedByRemovals(joinRel(dir, p), p, removes))) {
      out.add(p);
    }
  }
  return [...out].sort();
}

/**
 * Refuses to overwrite or remove a local file that changed after the scan
 * that planned the sync (a write racing the sync must never be lost).
 */
async function assertUntouched(
  s: RepoSession,
  model: ModelRef,
  paths: readonly string[],
  expect: ReadonlyMap<string, { size: number; mtimeMs: number }>,
): Promise<void> {
  const dir = modelDir(s, model);
  const changed: string[] = [];
  for (const p of paths) {
    const want = expect.get(p);
    const st = lstatEntry(joinRel(dir, p)) ?? undefined;
    // An absent path may hold a directory: only its files count (they are
    // other paths of the plan, or placeFile refuses to replace them).
    if (want === undefined && st?.isDirectory) continue;
    if (want === undefined ? st !== undefined : !sameStat(st, want)) {
      // A link followed with "symlinks: follow" was scanned by what it points to.
      if (want === undefined || !st?.isSymlink || !sameStat(await statOrUndefined(dir, p), want)) {
        changed.push(p);
      }
    }
  }
  if (changed.length > 0) {
    throw new ConflictError(
      `Local files of ${formatRef(model)} changed while syncing (${
        listPaths(changed)
      }); they were not overwritten. Rerun the command.`,
      { paths: changed },
    );
  }
}

function sameStat(st: Entry | undefined, want: { size: number; mtimeMs: number }): boolean {
  return st !== undefined && st.size === want.size &&
    Math.abs((st.mtime?.getTime() ?? 0) - want.mtimeMs) < 1;
}

async function statOrUndefined(dir: string, p: string): Promise<Deno.FileInfo | undefined> {
  return await Deno.stat(path.join(dir, p)).catch(() => undefined);
}

/**
 * Removes a model's directory when it is empty, and its now-empty type
 * directories up to (not including) the data directory: a pulled tombstone
 * leaves no empty folders behind. A non-empty directory stays.
 */
export async function pruneEmptyModelDir(s: RepoSession, model: ModelRef): Promise<void> {
  const root = path.join(s.repoDir, s.config.dataDir);
  let dir = modelDir(s, model);
  while (dir.startsWith(root + path.sep)) {
    try {
      await Deno.remove(dir);
    } catch {
      return;
    }
    dir = path.dirname(dir);
  }
}
