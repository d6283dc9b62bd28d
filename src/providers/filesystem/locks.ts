/**
 * Locks of the filesystem provider: `locks/global.json` and
 * `locks/models/TYPE/ID.json`. A free key is taken by create-exclusive link.
 * Every later change of a record (renew, release, takeover, force release)
 * is a compare-and-swap built from create-exclusive *claim files*: to change
 * the version `(nonce N, seq S)` a process must first create
 * `<record>.cas-N-S`, then confirm the record is still `(N, S)`, then rename
 * (or unlink). See design/filesystem.md for why this is safe.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { DatastoreError, LeaseLostError } from "../../errors.ts";
import { formatRef, isValidId, isValidName } from "../../model/ref.ts";
import type {
  AcquireResult,
  CallOptions,
  LockHandle,
  LockInfo,
  LockKey,
  LockRecord,
  LockRequest,
} from "../../provider/contract.ts";
import { describeHolder } from "../../provider/stale.ts";
import {
  fsFail,
  isNotFound,
  linkExclusive,
  mapLimit,
  readDirOrEmpty,
  removeQuietly,
  type Signals,
  type TempFiles,
} from "./_fs.ts";
import {
  encodeRecord,
  type JudgeContext,
  judgeState,
  readRecord,
  type RecordState,
  type StoredRecord,
} from "./lock_record.ts";
import { publicRecord } from "../../provider/lock_schema.ts";
import { checkRef } from "./manifests.ts";

/** Highest claim slot tried before giving up on a version. */
const MAX_SLOT = 64;

/** The printed key of a lock: `global` or `type/id`. */
export function keyName(key: LockKey): string {
  return key.kind === "global" ? "global" : formatRef(key.model);
}

/** The locks area of one datastore (or of a probe directory). */
export class LockStore {
  readonly #dir: string;
  readonly #temps: TempFiles;
  readonly #ctx: JudgeContext;

  constructor(dir: string, temps: TempFiles, ctx: JudgeContext) {
    this.#dir = dir;
    this.#temps = temps;
    this.#ctx = ctx;
  }

  /** Path of a key's record. */
  recordPath(key: LockKey): string {
    if (key.kind === "global") return join(this.#dir, "global.json");
    checkRef(key.model);
    return join(this.#dir, "models", ...key.model.type.split("/"), `${key.model.id}.json`);
  }

  /** A handle on one key; no I/O. */
  handle(key: LockKey, signals: Signals): LockHandle {
    return new FsLockHandle(key, this.recordPath(key), {
      temps: this.#temps,
      ctx: this.#ctx,
      signals,
    });
  }

  /** Every record (global and per model) with its judgement; claim and temp files skipped. */
  async list(signals: Signals, opts: CallOptions = {}): Promise<LockInfo[]> {
    const signal = signals.for(opts.signal);
    const keys: LockKey[] = [{ kind: "global" }];
    const models = join(this.#dir, "models");
    const types: string[] = [];
    for (const e of await readDirOrEmpty(models, signal)) {
      if (!e.isDirectory) continue;
      if (e.name.startsWith("@") && isValidName(e.name.slice(1))) {
        for (const n of await readDirOrEmpty(join(models, e.name), signal)) {
          if (n.isDirectory && isValidName(n.name)) types.push(`${e.name}/${n.name}`);
        }
      } else if (isValidName(e.name)) {
        types.push(e.name);
      }
    }
    for (const type of types) {
      for (const e of await readDirOrEmpty(join(models, ...type.split("/")), signal)) {
        const id = e.name.endsWith(".json") ? e.name.slice(0, -5) : "";
        if (e.isFile && isValidId(id)) keys.push({ kind: "model", model: { type, id } });
      }
    }
    const infos = await mapLimit(keys, 16, (k) => this.handle(k, signals).inspect({ signal }));
    return infos.filter((i): i is LockInfo => i !== null);
  }
}

interface HandleDeps {
  temps: TempFiles;
  ctx: JudgeContext;
  signals: Signals;
}

class FsLockHandle implements LockHandle {
  readonly key: LockKey;
  readonly #name: string;
  readonly #path: string;
  readonly #deps: HandleDeps;

  constructor(key: LockKey, path: string, deps: HandleDeps) {
    this.key = key;
    this.#name = keyName(key);
    this.#path = path;
    this.#deps = deps;
  }

  async tryAcquire(req: LockRequest, opts: CallOptions = {}): Promise<AcquireResult> {
    const signal = this.#deps.signals.for(opts.signal);
    if (!Number.isInteger(req.ttlMs) || req.ttlMs <= 0) {
      throw new Error(`tryAcquire(${this.#name}): ttlMs must be a positive integer.`);
    }
    const nonce = randomBytes(16).toString("hex");
    let last: LockInfo | undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      const at = new Date().toISOString();
      const record: StoredRecord = {
        key: this.#name,
        holder: req.holder,
        host: req.host,
        pid: req.pid,
        operation: req.operation,
        acquiredAt: at,
        renewedAt: at,
        ttlMs: req.ttlMs,
        nonce,
        ...(req.repo === undefined ? {} : { repo: req.repo }),
        seq: 0,
      };
      if (await this.#create(record, signal)) {
        return { acquired: true, record: publicRecord(record) };
      }
      const cur = await this.#read(signal);
      if (cur === null) continue; // released meanwhile: try to create again
      const info = judgeState(cur, this.#deps.ctx);
      last = info;
      if (!info.stale) return { acquired: false, current: info };
      if (await this.#cas(cur, record, signal)) {
        return { acquired: true, record: publicRecord(record), tookOver: info.record };
      }
      // Lost the takeover: loop to see what is there now.
    }
    if (last !== undefined) return { acquired: false, current: last };
    throw new DatastoreError(
      `Lock ${this.#name} (${this.#path}) kept changing while acquiring it; retry.`,
      { retryable: true },
    );
  }

  async renew(nonce: string, opts: CallOptions = {}): Promise<LockRecord> {
    const signal = this.#deps.signals.for(opts.signal);
    for (let attempt = 0; attempt < 3; attempt++) {
      const cur = await this.#read(signal);
      if (cur === null || cur.kind !== "ok" || cur.record.nonce !== nonce) {
        // Gone: someone deleted it (lock release --force). Another nonce:
        // another process took it over (it judged the lease stale).
        throw new LeaseLostError(
          `Lost the lock on ${this.#name}: ${
            cur === null
              ? "it was released by force (its record is gone)"
              : cur.kind !== "ok"
              ? "its record was overwritten with one that cannot be read"
              : `it was taken over by ${describeHolder(cur.record)}`
          }; work stopped before committing. Rerun the command.`,
        );
      }
      const next: StoredRecord = {
        ...cur.record,
        renewedAt: new Date().toISOString(),
        seq: cur.seq + 1,
      };
      if (await this.#cas(cur, next, signal)) return publicRecord(next);
    }
    throw new LeaseLostError(
      `Lost the lock on ${this.#name}: its record kept changing while it was renewed; ` +
        `work stopped before committing. Rerun the command.`,
    );
  }

  async release(nonce: string, opts: CallOptions = {}): Promise<void> {
    const signal = this.#deps.signals.for(opts.signal);
    for (let attempt = 0; attempt < 3; attempt++) {
      const cur = await this.#read(signal);
      if (cur === null || cur.kind !== "ok" || cur.record.nonce !== nonce) return;
      if (await this.#cas(cur, null, signal)) return;
    }
  }

  async inspect(opts: CallOptions = {}): Promise<LockInfo | null> {
    const cur = await this.#read(this.#deps.signals.for(opts.signal));
    return cur === null ? null : judgeState(cur, this.#deps.ctx);
  }

  async forceRelease(nonce: string, opts: CallOptions = {}): Promise<boolean> {
    const signal = this.#deps.signals.for(opts.signal);
    const cur = await this.#read(signal);
    if (cur === null || cur.record.nonce !== nonce) return false;
    return await this.#cas(cur, null, signal);
  }

  #read(signal?: AbortSignal): Promise<RecordState | null> {
    return readRecord(this.#name, this.#path, signal);
  }

  /** Create-exclusive of a free key. */
  async #create(record: StoredRecord, signal?: AbortSignal): Promise<boolean> {
    await this.#deps.temps.ensure();
    const tmp = await this.#deps.temps.write(encodeRecord(record), signal, "l");
    try {
      signal?.throwIfAborted();
      return await linkExclusive(tmp, this.#path);
    } finally {
      await removeQuietly(tmp);
    }
  }

  /**
   * Compare-and-swap: replaces the record with `next` (or removes it when
   * null) only if it is still the version `cur`. Returns whether we won.
   */
  async #cas(cur: RecordState, next: StoredRecord | null, signal?: AbortSignal): Promise<boolean> {
    const claim = await this.#claim(cur, signal);
    if (claim === null) return false;
    let won = false;
    try {
      const now = await this.#read(signal);
      if (now === null || now.ident !== cur.ident) return false;
      // A later slot means our claim was judged abandoned: we were paused too long.
      if (await exists(claimPath(this.#path, cur.ident, claim.slot + 1))) return false;
      signal?.throwIfAborted();
      if (next === null) {
        try {
          await Deno.remove(this.#path);
        } catch (err) {
          if (isNotFound(err)) return false;
          throw fsFail(err, "remove lock record", this.#path);
        }
      } else {
        const tmp = await this.#deps.temps.write(encodeRecord(next), signal, "l");
        try {
          await Deno.rename(tmp, this.#path);
        } catch (err) {
          await removeQuietly(tmp);
          throw fsFail(err, "replace lock record", this.#path);
        }
      }
      won = true;
      return true;
    } finally {
      if (won && (next === null || next.nonce !== cur.record.nonce)) {
        // The nonce's lease ended: sweep every claim it left (record changed first).
        await this.#sweep(cur.sweepPrefix);
      } else {
        // Renewed (this version is dead) or lost: drop the slots we know of.
        for (let s = won ? 0 : claim.slot; s <= claim.slot; s++) {
          await removeQuietly(claimPath(this.#path, cur.ident, s));
        }
      }
    }
  }

  /**
   * Creates the claim on version `cur`: slot 0, or the next slot after an
   * abandoned one (older than the record's ttl + skew). Null when another
   * process is changing that version right now.
   */
  async #claim(cur: RecordState, signal?: AbortSignal): Promise<{ slot: number } | null> {
    const abandonAfter = cur.record.ttlMs + this.#deps.ctx.skewMarginMs;
    let vanished = 0;
    for (let slot = 0; slot <= MAX_SLOT;) {
      signal?.throwIfAborted();
      const path = claimPath(this.#path, cur.ident, slot);
      const body = new TextEncoder().encode(
        JSON.stringify({
          host: this.#deps.ctx.host,
          pid: this.#deps.ctx.pid,
          at: new Date().toISOString(),
        }),
      );
      const tmp = await this.#deps.temps.write(body, signal, "c");
      try {
        if (await linkExclusive(tmp, path)) return { slot };
      } finally {
        await removeQuietly(tmp);
      }
      let mtime: number;
      try {
        mtime = (await Deno.lstat(path)).mtime?.getTime() ?? Date.now();
      } catch (err) {
        if (!isNotFound(err)) throw fsFail(err, "inspect lock claim", path);
        if (++vanished > 3) return null;
        continue; // its owner just removed it: try the same slot again
      }
      if (Date.now() - mtime <= abandonAfter) return null;
      slot++;
    }
    return null;
  }

  async #sweep(prefix: string): Promise<void> {
    const dir = dirname(this.#path);
    const start = `${basename(this.#path)}.cas-${prefix}`;
    try {
      for (const e of await readDirOrEmpty(dir)) {
        if (e.name.startsWith(start)) await removeQuietly(join(dir, e.name));
      }
    } catch {
      // Leftover claims of a dead version are harmless litter.
    }
  }
}

/** The claim file for changing version `ident` of a record, in `slot`. */
export function claimPath(recordPath: string, ident: string, slot: number): string {
  return `${recordPath}.cas-${ident}${slot === 0 ? "" : `.${slot}`}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw fsFail(err, "inspect lock claim", path);
  }
}
