/**
 * Records of the filesystem provider: compare-and-swap on a plain file
 * system, without locks (design/filesystem.md).
 *
 * A record `K` is the directory `ROOT/K/` holding numbered versions
 * `NNNNNNNNNNNN.json` (12 digits). The current version is the highest
 * number; an empty version file means "deleted". Every write links a
 * complete temporary file to the next number, create-exclusive, so of any
 * number of writers that read version `n`, exactly one creates `n + 1`.
 * After a write the writer removes the versions below its own; the highest
 * is never removed, so the highest number only grows. A writer whose link
 * succeeded checks that no higher version exists (its number could have been
 * cleaned up after a faster writer moved on); if one does, it lost.
 *
 * A regular file at `ROOT/K` (a format-1 marker, lock or the like) reads as
 * a record of one version, so `modelsync migrate` can read and remove it.
 *
 * @module
 */
import { join } from "node:path";
import type { Page, RecordListing, StoredRecord } from "../../provider/contract.ts";
import type { Entry } from "../../repo/entry.ts";
import {
  ASYNC_FS,
  type FsCalls,
  fsFail,
  isNotFound,
  linkExclusive,
  mkdirp,
  readDirOrEmpty,
  removeQuietly,
  renameInto,
  type TempFiles,
} from "./_fs.ts";

const VERSION = /^(\d{12})\.json$/;
const KEY_SEGMENT = /^[A-Za-z0-9@_-][A-Za-z0-9._@-]*$/;
/** Top-level names that hold no records. */
const RESERVED = new Set(["blobs", "tmp"]);
/** Re-reads of a directory whose newest version vanished meanwhile. */
const RETRIES = 8;

/** What a record's token is made of. */
type Stat = Pick<Deno.FileInfo, "ino" | "mtime" | "size">;

/** The version a record holds: number, file and token. */
interface Current {
  n: number;
  path: string;
  token: string;
  deleted: boolean;
  mtimeMs: number;
}

function pad(n: number): string {
  return String(n).padStart(12, "0");
}

function tokenOf(n: number | "f", st: Stat): string {
  return `${n}.${st.ino ?? "-"}.${st.mtime?.getTime() ?? "-"}.${st.size}`;
}

/** The records area of one datastore. */
export class RecordStore {
  readonly #root: string;
  readonly #temps: TempFiles;
  /**
   * The calls records are read and written with: `SYNC_FS` when the store is
   * on a local disk (a record write is a handful of metadata calls, and an
   * async call's hop to the thread pool costs more than the call), else
   * `ASYNC_FS` (see `FsCalls`).
   */
  fs: FsCalls = ASYNC_FS;

  constructor(root: string, temps: TempFiles) {
    this.#root = root;
    this.#temps = temps;
  }

  #dir(key: string): string {
    const segs = key.split("/");
    if (RESERVED.has(segs[0]) || !segs.every((s) => KEY_SEGMENT.test(s) && s !== "..")) {
      throw new Error(`Invalid record key ${JSON.stringify(key)}.`);
    }
    return join(this.#root, ...segs);
  }

  /** The current version of the record in `dir`, or null when it has none. */
  async #current(dir: string, signal?: AbortSignal): Promise<Current | null> {
    let st: Entry | null;
    try {
      st = await this.fs.lstatOrNull(dir);
    } catch (err) {
      throw fsFail(err, "read record", dir);
    }
    if (st === null) return null;
    if (st.isFile) {
      return { n: 0, path: dir, token: tokenOf("f", st), deleted: false, mtimeMs: mtime(st) };
    }
    for (let attempt = 0; attempt < RETRIES; attempt++) {
      const n = highest(await readDirOrEmpty(dir, signal, this.fs));
      if (n === 0) return null;
      const path = join(dir, `${pad(n)}.json`);
      let v: Entry | null;
      try {
        v = await this.fs.lstatOrNull(path);
      } catch (err) {
        throw fsFail(err, "read record", path);
      }
      if (v !== null) {
        return { n, path, token: tokenOf(n, v), deleted: v.size === 0, mtimeMs: mtime(v) };
      }
      // Cleaned up after a newer version appeared: look again.
    }
    throw fsFail(new Error("it keeps changing"), "read record", dir);
  }

  async get(key: string, signal?: AbortSignal): Promise<StoredRecord | null> {
    const dir = this.#dir(key);
    for (let attempt = 0; attempt < RETRIES; attempt++) {
      const cur = await this.#current(dir, signal);
      if (cur === null || cur.deleted) return null;
      let read: { bytes: Uint8Array; info: Deno.FileInfo };
      try {
        // The token from the open handle names exactly the bytes read.
        read = await this.fs.readWithStat(cur.path);
      } catch (err) {
        if (isNotFound(err)) continue; // replaced meanwhile
        throw fsFail(err, "read record", cur.path);
      }
      return {
        bytes: read.bytes,
        version: tokenOf(cur.n === 0 ? "f" : cur.n, read.info),
        modifiedMs: mtime(read.info),
      };
    }
    throw fsFail(new Error("it keeps changing"), "read record", dir);
  }

  async create(key: string, bytes: Uint8Array, signal?: AbortSignal): Promise<string | null> {
    const dir = this.#dir(key);
    for (let attempt = 0; attempt < RETRIES; attempt++) {
      const cur = await this.#current(dir, signal);
      if (cur !== null && !cur.deleted) return null;
      const won = await this.#write(dir, cur?.n ?? 0, bytes, signal, cur === null);
      if (won !== null) return won;
    }
    return null;
  }

  async replace(
    key: string,
    bytes: Uint8Array,
    version: string,
    signal?: AbortSignal,
  ): Promise<string | null> {
    const dir = this.#dir(key);
    const cur = await this.#current(dir, signal);
    if (cur === null || cur.deleted || cur.token !== version) return null;
    if (cur.n === 0) return await this.#replacePlain(cur, bytes, signal);
    return await this.#write(dir, cur.n, bytes, signal);
  }

  async delete(key: string, version: string, signal?: AbortSignal): Promise<boolean> {
    const dir = this.#dir(key);
    const cur = await this.#current(dir, signal);
    if (cur === null || cur.deleted || cur.token !== version) return false;
    if (cur.n === 0) {
      try {
        await this.fs.remove(cur.path);
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw fsFail(err, "delete record", cur.path);
      }
    }
    return (await this.#write(dir, cur.n, new Uint8Array(0), signal)) !== null;
  }

  /** Every record under `prefix`, sorted by key, in one page. */
  async list(prefix: string, signal?: AbortSignal): Promise<Page<RecordListing>> {
    const items: RecordListing[] = [];
    const slash = prefix.lastIndexOf("/");
    const base = prefix.slice(0, slash + 1);
    const start = base === "" ? this.#root : this.#dir(base.slice(0, -1));
    await this.#walk(start, base, signal, async (key, path) => {
      if (!key.startsWith(prefix)) return;
      const cur = await this.#current(path, signal);
      if (cur !== null && !cur.deleted) {
        items.push({ key, version: cur.token, modifiedMs: cur.mtimeMs });
      }
    });
    items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { items };
  }

  async #walk(
    dir: string,
    rel: string,
    signal: AbortSignal | undefined,
    visit: (key: string, path: string) => Promise<void>,
  ): Promise<void> {
    const entries = await readDirOrEmpty(dir, signal, this.fs);
    if (rel !== "" && highest(entries) > 0) {
      await visit(rel.slice(0, -1), dir);
      return;
    }
    for (const e of entries) {
      if (rel === "" && RESERVED.has(e.name)) continue;
      if (!KEY_SEGMENT.test(e.name)) continue;
      if (e.isDirectory) await this.#walk(join(dir, e.name), `${rel}${e.name}/`, signal, visit);
      else if (e.isFile && !VERSION.test(e.name)) await visit(`${rel}${e.name}`, join(dir, e.name));
    }
  }

  /**
   * Links `bytes` as version `n + 1` of the record in `dir`. Returns the new
   * token, or null when another writer changed the record first.
   */
  async #write(
    dir: string,
    n: number,
    bytes: Uint8Array,
    signal?: AbortSignal,
    newRecord = false,
  ): Promise<string | null> {
    const fs = this.fs;
    const tmp = await this.#temps.write(bytes, { signal, tag: "r", fs });
    const target = join(dir, `${pad(n + 1)}.json`);
    try {
      // A new record's directory is most often missing: made first (once the
      // temp file shows the store is there), the link into it does not fail
      // once to tell, an error built per new record.
      if (newRecord) await mkdirp(dir, fs);
      if (!(await linkExclusive(tmp, target, fs))) return null;
      // Our number may have been written and cleaned up before (a faster
      // writer moved on): then a higher version exists and we lost.
      const entries = await readDirOrEmpty(dir, signal, fs);
      if (highest(entries) > n + 1) {
        await removeQuietly(target, fs);
        return null;
      }
      const st = await fs.lstat(tmp).catch(() => undefined);
      for (const e of entries) {
        const m = VERSION.exec(e.name);
        if (m !== null && Number(m[1]) <= n) await removeQuietly(join(dir, e.name), fs);
      }
      return st === undefined ? `${n + 1}.unknown` : tokenOf(n + 1, st);
    } finally {
      await removeQuietly(tmp, fs);
    }
  }

  /** A plain-file (format-1) record replaced by rename: only `migrate` does this. */
  async #replacePlain(cur: Current, bytes: Uint8Array, signal?: AbortSignal): Promise<string> {
    const fs = this.fs;
    const tmp = await this.#temps.write(bytes, { signal, tag: "r", fs });
    try {
      await renameInto(tmp, cur.path, "replace", fs);
      return tokenOf("f", await fs.lstat(cur.path));
    } finally {
      await removeQuietly(tmp, fs);
    }
  }
}

function highest(entries: readonly Deno.DirEntry[]): number {
  let max = 0;
  for (const e of entries) {
    const m = VERSION.exec(e.name);
    if (m !== null && e.isFile) max = Math.max(max, Number(m[1]));
  }
  return max;
}

function mtime(st: Stat): number {
  return st.mtime?.getTime() ?? 0;
}
