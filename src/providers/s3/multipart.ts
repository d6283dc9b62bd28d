/**
 * Multipart upload of a large file to S3, its parts sent in parallel
 * (design/s3.md, "Blobs"): parts are read in order and hashed as read, at
 * most {@linkcode PARTS_PER_UPLOAD} of one upload are in flight, and the
 * bytes of parts in flight across all uploads of a provider stay within a
 * shared {@linkcode ByteBudget}. The last part is sent only once the whole
 * file hashed to its name, so `CompleteMultipartUpload` never joins a
 * changed file; any failure stops the reading, cancels the parts in flight,
 * waits for them to settle and aborts the upload.
 *
 * @example
 * ```ts ignore
 * import { ByteBudget, putMultipart } from "./multipart.ts";
 * const budget = new ByteBudget(64 * 1024 * 1024);
 * await putMultipart(store, hash, { path: "/m/shard.bin", size }, { budget });
 * ```
 * @module
 */
import { createHash } from "node:crypto";
import * as S3 from "@aws-sdk/client-s3";
import { getLogger } from "@logtape/logtape";
import { checkedChunks } from "../../provider/blob_source.ts";
import { conditionFailed, type S3Store } from "./client.ts";

const MiB = 1024 * 1024;
/** Parts of one upload in flight at once. */
export const PARTS_PER_UPLOAD = 4;
/** Bytes of parts in flight across the uploads of one provider (8 parts of 8 MiB). */
export const PART_BUDGET_BYTES = 64 * MiB;

/** The part size of a file: 8 MiB, more for files over ~78 GiB (S3 allows 10,000 parts). */
export function partSizeOf(size: number): number {
  return Math.max(8 * MiB, Math.ceil(size / 10_000 / MiB) * MiB);
}

/**
 * A byte semaphore: `take(n)` waits until `n` more bytes fit under the
 * limit (a request larger than the limit waits until nothing else is held),
 * `give(n)` returns them. Waiters are served in order.
 *
 * @example
 * ```ts
 * import { ByteBudget } from "./multipart.ts";
 * const b = new ByteBudget(10);
 * await b.take(6);
 * const second = b.take(6); // waits
 * b.give(6);
 * await second;
 * console.log(b.held); // 6
 * ```
 */
export class ByteBudget {
  readonly limit: number;
  #held = 0;
  readonly #waiting: { n: number; wake: () => void }[] = [];

  constructor(limit: number) {
    if (!(limit > 0)) throw new Error(`ByteBudget needs a positive limit, got ${limit}`);
    this.limit = limit;
  }

  /** Bytes taken and not given back. */
  get held(): number {
    return this.#held;
  }

  #fits(n: number): boolean {
    return this.#held === 0 || this.#held + n <= this.limit;
  }

  /** Takes `n` bytes, waiting for them; rejects with the signal's reason if it aborts first. */
  take(n: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.#waiting.length === 0 && this.#fits(n)) {
      this.#held += n;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const entry = {
        n,
        wake: () => {
          signal?.removeEventListener("abort", onAbort);
          this.#held += n;
          resolve();
        },
      };
      const onAbort = () => {
        const i = this.#waiting.indexOf(entry);
        if (i >= 0) this.#waiting.splice(i, 1);
        reject(signal?.reason);
        this.#wakeWaiters(); // the next in line may fit now
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiting.push(entry);
    });
  }

  /** Gives back `n` bytes and wakes the waiters that now fit. */
  give(n: number): void {
    this.#held = Math.max(0, this.#held - n);
    this.#wakeWaiters();
  }

  #wakeWaiters(): void {
    while (this.#waiting.length > 0 && this.#fits(this.#waiting[0].n)) {
      this.#waiting.shift()!.wake();
    }
  }
}

/** A part as `CompleteMultipartUpload` names it. */
interface Part {
  PartNumber: number;
  ETag?: string;
  ChecksumSHA256?: string;
}

/**
 * Uploads a file of `source.size` bytes as the object of `rel` (below the
 * datastore prefix) in parts, checked against `hash`. Returns true when
 * this upload created the object, false when the conditional completion
 * found it stored already (our parts are then aborted). Throws the first
 * failure (a part, the read, the hash check, the completion) after the
 * upload was aborted.
 */
export async function putMultipart(
  s3: S3Store,
  rel: string,
  hash: string,
  source: { path: string; size: number; onRead?: (bytes: number) => void },
  opts: { budget: ByteBudget; signal?: AbortSignal },
): Promise<boolean> {
  const { signal } = opts;
  const at = s3.at(rel);
  const what = `store blob ${hash}`;
  const create = new S3.CreateMultipartUploadCommand({ ...at, ChecksumAlgorithm: "SHA256" });
  const { UploadId } = await s3.send(what, create, { signal });
  let completed = false;
  try {
    const Parts = await sendParts(s3, { at, UploadId, what, hash, source, ...opts });
    const complete = new S3.CompleteMultipartUploadCommand({
      ...at,
      UploadId,
      MultipartUpload: { Parts },
      IfNoneMatch: "*",
    });
    // A failed condition: stored meanwhile by someone else; our parts are aborted.
    const out = await s3.send(what, complete, { signal, expect: conditionFailed });
    completed = out !== null;
    return completed;
  } finally {
    if (!completed) {
      // Not under the caller's signal (it may have ended): the client's own deadline applies.
      const abort = new S3.AbortMultipartUploadCommand({ ...at, UploadId });
      await s3.send(`abort the upload of blob ${hash}`, abort).catch((err) => {
        getLogger(["modelsync", "s3"]).debug("abort of multipart upload {id} failed: {err}", {
          id: UploadId,
          err: String((err as Error)?.message ?? err).split("\n")[0],
        });
      });
    }
  }
}

/**
 * Reads the parts in order and sends them, at most PARTS_PER_UPLOAD at once
 * and within the budget; returns them in order once all are stored. On a
 * failure nothing more is read, the parts in flight are cancelled, and it
 * throws once they have all settled (so an abort that follows is the last
 * word on the upload).
 */
async function sendParts(
  s3: S3Store,
  o: {
    at: { Bucket: string; Key: string };
    UploadId?: string;
    what: string;
    hash: string;
    source: { path: string; size: number; onRead?: (bytes: number) => void };
    budget: ByteBudget;
    signal?: AbortSignal;
  },
): Promise<Part[]> {
  const partSize = partSizeOf(o.source.size);
  const stop = new AbortController();
  const partSignal = o.signal === undefined
    ? stop.signal
    : AbortSignal.any([o.signal, stop.signal]);
  const parts: Part[] = [];
  const inFlight = new Set<Promise<void>>();
  let failed: { error: unknown } | undefined;
  const fail = (error: unknown) => {
    failed ??= { error };
    stop.abort(error);
  };
  const send = async (PartNumber: number, Body: Uint8Array): Promise<Part> => {
    const ChecksumSHA256 = createHash("sha256").update(Body).digest("base64");
    const cmd = new S3.UploadPartCommand({
      ...o.at,
      UploadId: o.UploadId,
      PartNumber,
      Body,
      ChecksumSHA256,
    });
    const { ETag } = await s3.send(o.what, cmd, { signal: partSignal, bytes: Body.length });
    return { PartNumber, ETag, ChecksumSHA256 };
  };
  // The last part comes out of checkedChunks only once the whole file hashed to its name.
  const chunks = checkedChunks(o.hash, o.source, partSize);
  try {
    for (let number = 1;; number++) {
      while (inFlight.size >= PARTS_PER_UPLOAD) await Promise.race(inFlight);
      if (failed !== undefined) break;
      await o.budget.take(partSize, partSignal);
      let next: IteratorResult<Uint8Array>;
      try {
        next = await chunks.next();
      } catch (err) {
        o.budget.give(partSize);
        throw err;
      }
      // A part failed while this one was read: send nothing more.
      if (next.done || failed !== undefined) {
        o.budget.give(partSize);
        break;
      }
      const task: Promise<void> = send(number, next.value).then(
        (part) => void (parts[part.PartNumber - 1] = part),
        fail,
      ).finally(() => {
        o.budget.give(partSize);
        inFlight.delete(task);
      });
      inFlight.add(task);
    }
  } catch (err) {
    fail(err);
  } finally {
    await chunks.return(undefined).catch(() => {}); // closes the file
    await Promise.all(inFlight);
  }
  if (failed !== undefined) throw failed.error;
  return parts;
}
