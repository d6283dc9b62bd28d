/**
 * Locks of the S3 provider: `locks/global.json` and
 * `locks/models/TYPE/ID.json`, one small JSON object per key.
 *
 * - acquire: PUT with `If-None-Match: *`; on 412 read the record, and if it
 *   is stale take it over by PUT with `If-Match` on the ETag just read (never
 *   a delete);
 * - renew: PUT with `If-Match` on our record's ETag;
 * - release / force release: DELETE with `If-Match` on the ETag of the record
 *   that carries the nonce.
 *
 * Expiry is judged by the server's clock: the response's `Date` header
 * against the object's `Last-Modified` (both 1 s resolution, rounded so a
 * lease is never judged expired early). See design/s3.md.
 *
 * @module
 */
import { randomBytes } from "node:crypto";
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { DatastoreError, LeaseLostError } from "../../errors.ts";
import { formatRef } from "../../model/ref.ts";
import type {
  AcquireResult,
  CallOptions,
  LockHandle,
  LockInfo,
  LockKey,
  LockRecord,
  LockRequest,
} from "../../provider/contract.ts";
import { publicRecord, storedLockRecordSchema } from "../../provider/lock_schema.ts";
import { describeHolder, judgeLock, lockRecordProblem } from "../../provider/stale.ts";
import { runPool } from "../../async.ts";
import { isNoSuchKey, isPreconditionFailed, s3Fail, serverDateOf } from "./client.ts";
import { type BlobArea, listPages } from "./blobs.ts";
import { manifestRel, modelOfRel } from "./manifests.ts";

/** A corrupt record is stale once unchanged this long (by the server clock). */
export const CORRUPT_TTL_MS = 30_000;
/** Last-Modified and Date are truncated to the second. */
const RESOLUTION_MS = 1_000;
const ATTEMPTS = 4;

type Stored = LockRecord & { seq: number };

/** The printed key of a lock: `global` or `type/id`. */
export function keyName(key: LockKey): string {
  return key.kind === "global" ? "global" : formatRef(key.model);
}

/** The key of a lock record below the datastore prefix. */
export function lockRel(key: LockKey): string {
  if (key.kind === "global") return "locks/global.json";
  return `locks/models/${manifestRel(key.model).slice("manifests/".length)}`;
}

/** What the lock store needs besides the bucket. */
export interface LockContext {
  host: string;
  pid: number;
  /** Local skew margin, used only when a response carried no Date header. */
  skewMarginMs: number;
  /** The local clock, for the timestamps written in records (tests shift it). */
  now: () => number;
  /** Throws when locks cannot be safe on this store (conditional writes ignored). */
  assertSafe: (what: string) => void;
}

/** A record as read, with its ETag and the server's judgement. */
interface Read {
  stored: Stored;
  etag: string;
  info: LockInfo;
}

/** The locks area of one S3 datastore. */
export class S3LockStore {
  readonly #a: BlobArea;
  readonly #ctx: LockContext;
  /** Our own records: key → the record we wrote last and its ETag. */
  readonly #mine = new Map<string, { stored: Stored; etag: string }>();

  constructor(area: BlobArea, ctx: LockContext) {
    this.#a = area;
    this.#ctx = ctx;
  }

  handle(key: LockKey): LockHandle {
    const rel = lockRel(key); // validates the ref
    const name = keyName(key);
    return {
      key,
      tryAcquire: (req, o) => this.#acquire(rel, name, req, o),
      renew: (nonce, o) => this.#renew(rel, name, nonce, o),
      release: (nonce, o) => this.#release(rel, name, nonce, o),
      inspect: async (o) => (await this.#read(rel, name, o?.signal))?.info ?? null,
      forceRelease: (nonce, o) => this.#forceRelease(rel, name, nonce, o),
    };
  }

  /** Every lock record with its judgement: one listing, then one GET per record. */
  async list(opts: CallOptions = {}): Promise<LockInfo[]> {
    const prefix = this.#a.key("locks/");
    const rels: Array<{ rel: string; name: string }> = [];
    const pages = listPages(this.#a, "locks/", { what: "locks", signal: opts.signal });
    for await (const page of pages) {
      for (const o of page.Contents ?? []) {
        const rel = o.Key?.slice(prefix.length) ?? "";
        if (rel === "global.json") rels.push({ rel: "locks/global.json", name: "global" });
        else if (rel.startsWith("models/")) {
          const model = modelOfRel(rel.slice("models/".length));
          if (model !== null) rels.push({ rel: `locks/${rel}`, name: formatRef(model) });
        }
      }
    }
    const infos = await runPool(
      rels,
      { jobs: 16, signal: opts.signal },
      (r) => this.#read(r.rel, r.name, opts.signal),
    );
    return infos.filter((r): r is Read => r !== null).map((r) => r.info);
  }

  async #acquire(
    rel: string,
    name: string,
    req: LockRequest,
    opts: CallOptions = {},
  ): Promise<AcquireResult> {
    this.#ctx.assertSafe(`take the lock on ${name}`);
    const at = new Date(this.#ctx.now()).toISOString();
    const stored: Stored = {
      key: name,
      holder: req.holder,
      host: req.host,
      pid: req.pid,
      operation: req.operation,
      acquiredAt: at,
      renewedAt: at,
      ttlMs: req.ttlMs,
      nonce: randomBytes(16).toString("hex"),
      ...(req.repo === undefined ? {} : { repo: req.repo }),
      seq: 0,
    };
    let last: Read | null = null;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const created = await this.#put(rel, name, stored, { IfNoneMatch: "*" }, opts.signal);
      if (created !== null) return { acquired: true, record: publicRecord(stored) };
      last = await this.#read(rel, name, opts.signal);
      if (last === null) continue; // released meanwhile: try to create again
      if (!last.info.stale) return { acquired: false, current: last.info };
      const took = await this.#put(rel, name, stored, { IfMatch: last.etag }, opts.signal);
      if (took !== null) {
        return { acquired: true, record: publicRecord(stored), tookOver: last.info.record };
      }
      // Someone else renewed or took it over first: look again.
    }
    if (last !== null) return { acquired: false, current: last.info };
    throw new DatastoreError(
      `The lock record ${name} on ${this.#a.fail("").where} kept changing while taking it: retry.`,
      { retryable: true },
    );
  }

  async #renew(
    rel: string,
    name: string,
    nonce: string,
    opts: CallOptions = {},
  ): Promise<LockRecord> {
    this.#ctx.assertSafe(`renew the lock on ${name}`);
    const lost = (why: string) =>
      new LeaseLostError(
        `Lost the lock on ${name}: ${why}; work stopped before committing. Rerun the command.`,
      );
    let base = this.#mine.get(rel);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (base === undefined || base.stored.nonce !== nonce) {
        const cur = await this.#read(rel, name, opts.signal);
        // Gone: someone deleted it (lock release --force). Another nonce:
        // another process took it over (it judged the lease stale).
        if (cur === null) throw lost("it was released by force (its record is gone)");
        if (cur.stored.nonce !== nonce) {
          throw lost(`it was taken over by ${describeHolder(cur.info.record)}`);
        }
        base = { stored: cur.stored, etag: cur.etag };
      }
      const next: Stored = {
        ...base.stored,
        renewedAt: new Date(this.#ctx.now()).toISOString(),
        seq: base.stored.seq + 1,
      };
      const etag = await this.#put(rel, name, next, { IfMatch: base.etag }, opts.signal);
      if (etag !== null) return publicRecord(next);
      base = undefined; // changed under us: read it again
    }
    throw lost("its record kept changing while it was renewed");
  }

  async #release(rel: string, name: string, nonce: string, opts: CallOptions = {}): Promise<void> {
    let base = this.#mine.get(rel);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (base === undefined || base.stored.nonce !== nonce) {
        const cur = await this.#read(rel, name, opts.signal);
        if (cur === null || cur.stored.nonce !== nonce) return;
        base = { stored: cur.stored, etag: cur.etag };
      }
      this.#ctx.assertSafe(`release the lock on ${name}`);
      const r = await this.#delete(rel, name, base.etag, opts.signal);
      if (r !== "changed") {
        if (this.#mine.get(rel)?.stored.nonce === nonce) this.#mine.delete(rel);
        return;
      }
      base = undefined;
    }
  }

  async #forceRelease(
    rel: string,
    name: string,
    nonce: string,
    opts: CallOptions = {},
  ): Promise<boolean> {
    const cur = await this.#read(rel, name, opts.signal);
    if (cur === null || cur.stored.nonce !== nonce) return false;
    this.#ctx.assertSafe(`force-release the lock on ${name}`);
    const r = await this.#delete(rel, name, cur.etag, opts.signal);
    return r === "deleted";
  }

  /** Conditional PUT of a record; its ETag, or null when the precondition failed. */
  async #put(
    rel: string,
    name: string,
    stored: Stored,
    condition: { IfNoneMatch: "*" } | { IfMatch: string },
    signal?: AbortSignal,
  ): Promise<string | null> {
    try {
      const out = await this.#a.s3.client.send(
        new PutObjectCommand({
          Bucket: this.#a.bucket,
          Key: this.#a.key(rel),
          Body: new TextEncoder().encode(JSON.stringify(stored) + "\n"),
          ContentType: "application/json",
          ...condition,
        }),
        { abortSignal: signal },
      );
      const etag = out.ETag ?? "";
      this.#mine.set(rel, { stored, etag });
      return etag;
    } catch (err) {
      if (isPreconditionFailed(err)) return null;
      throw s3Fail(err, this.#a.fail(`write lock record ${name}`));
    }
  }

  async #delete(
    rel: string,
    name: string,
    etag: string,
    signal?: AbortSignal,
  ): Promise<"deleted" | "changed" | "gone"> {
    try {
      await this.#a.s3.client.send(
        new DeleteObjectCommand({ Bucket: this.#a.bucket, Key: this.#a.key(rel), IfMatch: etag }),
        { abortSignal: signal },
      );
      return "deleted";
    } catch (err) {
      if (isPreconditionFailed(err)) return "changed";
      if (isNoSuchKey(err)) return "gone";
      throw s3Fail(err, this.#a.fail(`delete lock record ${name}`));
    }
  }

  /** Reads and judges a record; null when the key is free. */
  async #read(rel: string, name: string, signal?: AbortSignal): Promise<Read | null> {
    let out;
    let bytes: Uint8Array;
    try {
      out = await this.#a.s3.client.send(
        new GetObjectCommand({ Bucket: this.#a.bucket, Key: this.#a.key(rel) }),
        { abortSignal: signal },
      );
      bytes = (await out.Body?.transformToByteArray()) ?? new Uint8Array();
    } catch (err) {
      if (isNoSuchKey(err)) return null;
      throw s3Fail(err, this.#a.fail(`read lock record ${name}`));
    }
    const etag = out.ETag ?? "";
    const lastModifiedMs = out.LastModified?.getTime() ?? NaN;
    const server = serverDateOf(out);
    const stored = decode(name, bytes, {
      lastModifiedMs,
      etag,
      nowMs: server?.dateMs ?? this.#ctx.now(),
    });
    const info = this.#judge(stored.stored, lastModifiedMs, server?.dateMs);
    const result: Read = {
      stored: stored.stored,
      etag,
      info: stored.reason === undefined || !info.stale ? info : {
        ...info,
        staleReason: `corrupt record (${stored.reason}) unchanged for ${
          Math.round((CORRUPT_TTL_MS - info.ttlLeftMs) / 1000)
        }s`,
      },
    };
    return result;
  }

  /**
   * Server-clock judgement. The record was written at some instant in
   * [LM, LM + 1 s) and the server's "now" is in [Date, Date + 1 s), so the
   * time since the write is more than Date - (LM + 1 s): counting the write
   * at LM + 1 s never judges a live lease expired.
   */
  #judge(record: LockRecord, lastModifiedMs: number, serverNowMs: number | undefined): LockInfo {
    const base = { host: this.#ctx.host, pid: this.#ctx.pid };
    if (serverNowMs === undefined || !Number.isFinite(lastModifiedMs)) {
      // No server time in this response (unexpected): the local clock plus margin.
      return judgeLock(record, {
        ...base,
        nowMs: this.#ctx.now(),
        skewMarginMs: this.#ctx.skewMarginMs,
        ...(Number.isFinite(lastModifiedMs) ? { renewedAtMs: lastModifiedMs + RESOLUTION_MS } : {}),
      });
    }
    const info = judgeLock(record, {
      ...base,
      nowMs: serverNowMs,
      skewMarginMs: 0,
      renewedAtMs: lastModifiedMs + RESOLUTION_MS,
    });
    // Age by the server clock too (acquiredAt is the writer's clock).
    const acquired = Date.parse(record.acquiredAt);
    const renewed = Date.parse(record.renewedAt);
    const ageMs = Number.isFinite(acquired) && Number.isFinite(renewed)
      ? Math.max(0, serverNowMs - lastModifiedMs + (renewed - acquired))
      : info.ageMs;
    return { ...info, ageMs };
  }
}

/**
 * Parses a record. One that parses but claims an impossible lease
 * (`lockRecordProblem`) is corrupt like one that does not; its renewal time
 * is the object's Last-Modified, as the judgement uses it.
 */
function decode(
  name: string,
  bytes: Uint8Array,
  seen: { lastModifiedMs: number; etag: string; nowMs: number },
): { stored: Stored; reason?: string } {
  const { lastModifiedMs, etag } = seen;
  let reason: string | undefined;
  try {
    const parsed = storedLockRecordSchema.safeParse(JSON.parse(new TextDecoder().decode(bytes)));
    if (!parsed.success) {
      reason = `${parsed.error.issues[0].path.join(".") || "root"}: ${
        parsed.error.issues[0].message
      }`;
    } else if (parsed.data.key !== name) {
      reason = `it names key ${JSON.stringify(parsed.data.key)}`;
    } else {
      reason = lockRecordProblem(parsed.data, {
        nowMs: seen.nowMs,
        ...(Number.isFinite(lastModifiedMs) ? { renewedAtMs: lastModifiedMs + RESOLUTION_MS } : {}),
      });
      if (reason === undefined) return { stored: parsed.data };
    }
  } catch {
    reason = "it is not valid JSON";
  }
  const at = new Date(Number.isFinite(lastModifiedMs) ? lastModifiedMs : 0).toISOString();
  return {
    stored: {
      key: name,
      holder: "unknown (corrupt record)",
      host: "(unknown)",
      pid: 0,
      operation: "unknown",
      acquiredAt: at,
      renewedAt: at,
      ttlMs: CORRUPT_TTL_MS,
      nonce: `corrupt-${etag.replace(/[^A-Za-z0-9]/g, "")}`,
      seq: 0,
    },
    reason,
  };
}
