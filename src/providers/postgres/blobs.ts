/**
 * The PostgreSQL provider's blobs (design/postgres.md, "Blobs"): a row in
 * `blobs` (hash, size, chunk size) and the content in 1 MiB rows of
 * `blob_chunks`, written in one transaction that commits only once the
 * streamed content hashed to the blob's name, and read back a chunk per
 * statement, so neither direction holds a whole file in memory.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type * as C from "../../provider/contract.ts";
import {
  checkBlobHash,
  checkedChunks,
  missingBlob,
  readCheckedSource,
} from "../../provider/blob_source.ts";
import type { PgPool, Row } from "./client.ts";
import { CHUNK_BYTES } from "./migrations.ts";

/** Hashes per `hasBlobs` statement. */
const HAS_BATCH = 1_000;
/** Blobs per `listBlobs` page. */
const LIST_PAGE = 1_000;

/** The blob primitives over a pool; the provider adds records. */
export class PgBlobs {
  readonly pg: PgPool;

  constructor(pg: PgPool) {
    this.pg = pg;
  }

  async hasBlobs(hashes: string[], opts: C.CallOptions = {}): Promise<Set<string>> {
    const wanted = [...new Set(hashes)];
    for (const h of wanted) checkBlobHash(h);
    const found = new Set<string>();
    for (let i = 0; i < wanted.length; i += HAS_BATCH) {
      const batch = wanted.slice(i, i + HAS_BATCH);
      const [rows] = await this.pg.batch("look up blobs", (q) => [
        q(
          `SELECT hash FROM ${this.pg.schema}.blobs WHERE hash = ANY (string_to_array($1, ','))`,
          [batch.join(",")],
        ),
      ], opts);
      for (const r of rows) found.add(r.hash as string);
    }
    return found;
  }

  /**
   * One transaction: the `blobs` row first (a concurrent writer of the same
   * blob waits on it, then finds it stored), then the chunks as they are
   * read, and COMMIT only once the content hashed to `hash` at the size
   * scanned; otherwise ROLLBACK, so nothing is visible.
   */
  async putBlob(hash: string, source: C.BlobSource, opts: C.CallOptions = {}): Promise<void> {
    checkBlobHash(hash);
    const s = this.pg.schema;
    const small = source.kind === "bytes" || source.size <= CHUNK_BYTES;
    // A small source is read (and checked) before the transaction starts.
    const bytes = small ? await readCheckedSource(hash, source) : undefined;
    const size = bytes?.length ?? (source as { size: number }).size;
    await this.pg.transaction(`store blob ${hash.slice(0, 12)}…`, async (q) => {
      const claimed = await q(
        `INSERT INTO ${s}.blobs (hash, size, chunk_size) VALUES ($1, $2, $3)
         ON CONFLICT (hash) DO NOTHING RETURNING 1 AS claimed`,
        [hash, size, CHUNK_BYTES],
      );
      if (claimed.length === 0) return; // stored already (by us earlier, or another writer)
      const insert = (seq: number, data: Uint8Array) =>
        q(`INSERT INTO ${s}.blob_chunks (hash, seq, data) VALUES ($1, $2, $3)`, [
          hash,
          seq,
          Buffer.from(data.buffer, data.byteOffset, data.byteLength),
        ]);
      if (bytes !== undefined) {
        for (let seq = 0, at = 0; at < bytes.length; seq++, at += CHUNK_BYTES) {
          await insert(seq, bytes.subarray(at, at + CHUNK_BYTES));
        }
        return;
      }
      // One insert in flight while the next chunk is read and hashed.
      let seq = 0;
      let inFlight: Promise<Row[]> | undefined;
      try {
        for await (
          const chunk of checkedChunks(hash, source as C.BlobSource & { kind: "file" }, CHUNK_BYTES)
        ) {
          await inFlight;
          inFlight = insert(seq++, chunk);
        }
      } finally {
        await inFlight?.catch(() => {});
      }
      await inFlight;
    }, opts);
  }

  async getBlob(hash: string, opts: C.GetBlobOptions = {}): Promise<ReadableStream<Uint8Array>> {
    checkBlobHash(hash);
    const s = this.pg.schema;
    const [meta] = await this.pg.batch(`read blob ${hash.slice(0, 12)}…`, (q) => [
      q(`SELECT size::float8 AS size, chunk_size FROM ${s}.blobs WHERE hash = $1`, [hash]),
    ], opts);
    if (meta.length === 0) throw missingBlob(hash, this.pg.where);
    const total = meta[0].size as number;
    const chunkSize = meta[0].chunk_size as number;
    const start = Math.min(opts.range?.offset ?? 0, total);
    const end = Math.min(opts.range ? start + opts.range.length : total, total);
    let at = start;
    const pg = this.pg;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (at >= end) {
          controller.close();
          return;
        }
        const seq = Math.floor(at / chunkSize);
        const [rows] = await pg.batch(`read blob ${hash.slice(0, 12)}…`, (q) => [
          q(`SELECT data FROM ${s}.blob_chunks WHERE hash = $1 AND seq = $2`, [hash, seq]),
        ]);
        if (rows.length === 0) throw missingBlob(hash, pg.where);
        const data = rows[0].data as Uint8Array;
        const from = at - seq * chunkSize;
        const piece = data.subarray(from, Math.min(data.length, from + (end - at)));
        if (piece.length === 0) throw missingBlob(hash, pg.where);
        at += piece.length;
        controller.enqueue(new Uint8Array(piece.buffer, piece.byteOffset, piece.byteLength));
      },
    }, { highWaterMark: 0 });
  }

  async listBlobs(opts: C.ListOptions = {}): Promise<C.Page<C.BlobListing>> {
    const [rows] = await this.pg.batch("list blobs", (q) => [
      q(
        `SELECT hash, size::float8 AS size,
           floor(extract(epoch FROM stored_at) * 1000)::float8 AS ms
         FROM ${this.pg.schema}.blobs WHERE hash > $1 ORDER BY hash LIMIT ${LIST_PAGE}`,
        [opts.cursor ?? ""],
      ),
    ], opts);
    const items = rows.map((r) => ({
      hash: r.hash as string,
      size: r.size as number,
      modifiedMs: r.ms as number,
    }));
    return items.length === LIST_PAGE ? { items, cursor: items.at(-1)!.hash } : { items };
  }

  async deleteBlob(hash: string, opts: C.CallOptions = {}): Promise<void> {
    checkBlobHash(hash);
    await this.pg.batch(`delete blob ${hash.slice(0, 12)}…`, (q) => [
      q(`DELETE FROM ${this.pg.schema}.blobs WHERE hash = $1`, [hash]),
    ], opts);
  }
}
