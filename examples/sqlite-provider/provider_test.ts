/**
 * Behaviour of the SQLite example beyond the conformance kit: blobs that
 * span several chunks (ranged reads across chunk boundaries), calls whose
 * signal is aborted, an upload aborted part-way (nothing left behind), and
 * compare-and-swap between processes on one database file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { ContentChangedError, hashBytes, NotFoundError } from "@modelsync/cli/testing";
import sqliteProvider, { CHUNK_BYTES, type SqliteProvider } from "./mod.ts";

const context = (baseDir: string) => ({ callTimeoutMs: 10_000, host: "h", pid: 1, baseDir });

/** A fresh, initialised store in a temp dir; `using` removes it. */
async function store(pageSize = 1000) {
  const dir = await Deno.makeTempDir({ prefix: "modelsync-sqlite-" });
  const path = join(dir, "store.db");
  const p = await sqliteProvider.create({ path, pageSize }, context(dir)) as SqliteProvider;
  await p.init();
  return {
    p,
    dir,
    path,
    /** Counts rows of a table through a second connection. */
    rows(table: string): number {
      const db = new DatabaseSync(path, { readOnly: true });
      try {
        return Number(db.prepare(`SELECT count(*) AS n FROM ${table}`).get()!.n);
      } finally {
        db.close();
      }
    },
    async [Symbol.asyncDispose]() {
      await p.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function bytesOf(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7 + (i >> 11)) & 0xff;
  return out;
}

async function readAll(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(s).arrayBuffer());
}

Deno.test("a blob of several chunks is read whole and by ranges across chunk boundaries", async () => {
  await using s = await store();
  const b = bytesOf(2 * CHUNK_BYTES + 12_345, 1);
  const h = hashBytes(b);
  await Deno.writeFile(join(s.dir, "f"), b);
  await s.p.putBlob(h, { kind: "file", path: join(s.dir, "f"), size: b.length });
  assert.equal(s.rows("chunks"), 3);
  assert.equal(s.rows("uploads"), 0, "a finished upload is not left in uploads");
  assert.deepEqual(await readAll(await s.p.getBlob(h)), b);
  for (
    const [offset, length] of [
      [CHUNK_BYTES - 10, 20], // across the first boundary
      [CHUNK_BYTES - 1, CHUNK_BYTES + 2], // over a whole chunk
      [2 * CHUNK_BYTES, 12_345], // exactly the last chunk
      [b.length - 5, 100], // past the end: what there is
      [b.length, 10], // at the end: nothing
    ]
  ) {
    const got = await readAll(await s.p.getBlob(h, { range: { offset, length } }));
    assert.deepEqual(got, b.subarray(offset, offset + length), `range ${offset}+${length}`);
  }
  // The empty blob has no chunks.
  const empty = new Uint8Array(0);
  await s.p.putBlob(hashBytes(empty), { kind: "bytes", bytes: empty });
  assert.equal((await readAll(await s.p.getBlob(hashBytes(empty)))).length, 0);
  await s.p.deleteBlob(h);
  assert.equal(s.rows("chunks"), 0, "deleteBlob leaves chunks behind");
  await assert.rejects(s.p.getBlob(h), NotFoundError);
});

Deno.test("a multi-chunk blob under a wrong hash is refused and leaves nothing behind", async () => {
  await using s = await store();
  const b = bytesOf(CHUNK_BYTES + 1, 2);
  const wrong = hashBytes(bytesOf(10, 3));
  await assert.rejects(s.p.putBlob(wrong, { kind: "bytes", bytes: b }), ContentChangedError);
  assert.deepEqual([s.rows("blobs"), s.rows("chunks"), s.rows("uploads")], [0, 0, 0]);
});

Deno.test("every call honours an aborted signal and writes nothing", async () => {
  await using s = await store();
  const signal = AbortSignal.abort(new Error("stop now"));
  const b = bytesOf(100, 4);
  const h = hashBytes(b);
  const calls: [string, () => Promise<unknown>][] = [
    ["hasBlobs", () => s.p.hasBlobs([h], { signal })],
    ["putBlob", () => s.p.putBlob(h, { kind: "bytes", bytes: b }, { signal })],
    ["getBlob", () => s.p.getBlob(h, { signal })],
    ["listBlobs", () => s.p.listBlobs({ signal })],
    ["deleteBlob", () => s.p.deleteBlob(h, { signal })],
    ["getRecord", () => s.p.getRecord("k", { signal })],
    ["createRecord", () => s.p.createRecord("k", b, { signal })],
    ["replaceRecord", () => s.p.replaceRecord("k", b, "v", { signal })],
    ["deleteRecord", () => s.p.deleteRecord("k", "v", { signal })],
    ["listRecords", () => s.p.listRecords("", { signal })],
    ["open", () => s.p.open({ signal })],
    ["init", () => s.p.init({ signal })],
  ];
  for (const [name, call] of calls) {
    await assert.rejects(call(), /stop now/, `${name} ignored its aborted signal`);
  }
  assert.deepEqual([s.rows("records"), s.rows("blobs")], [0, 0]);
});

Deno.test("an upload aborted part-way stores no blob and removes its chunks", async () => {
  await using s = await store();
  // A named pipe: the test decides when the provider's reads return.
  const fifo = join(s.dir, "pipe");
  const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  assert.ok(mk.success, "mkfifo failed");
  const ac = new AbortController();
  const b = bytesOf(3 * CHUNK_BYTES, 5);
  const put = s.p.putBlob(hashBytes(b), { kind: "file", path: fifo, size: b.length }, {
    signal: ac.signal,
  });
  const writer = await Deno.open(fifo, { write: true });
  await writer.write(b.subarray(0, 2 * CHUNK_BYTES + 1));
  // Wait until the upload has written chunks, then abort it mid-way.
  for (let i = 0; s.rows("chunks") < 1; i++) {
    assert.ok(i < 2_000, "the upload never wrote a chunk");
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(s.rows("uploads"), 1, "a multi-chunk upload is recorded while it runs");
  ac.abort(new Error("interrupted"));
  writer.close();
  await assert.rejects(put, /interrupted/);
  assert.deepEqual([s.rows("blobs"), s.rows("chunks"), s.rows("uploads")], [0, 0, 0]);
});

Deno.test("an upload a killed process left behind is removed by a later open", async () => {
  await using s = await store();
  const db = new DatabaseSync(s.path);
  const old = Date.now() - 25 * 60 * 60 * 1000;
  db.prepare("INSERT INTO uploads (upload, started_ms) VALUES (?, ?)").run("dead", old);
  db.prepare("INSERT INTO uploads (upload, started_ms) VALUES (?, ?)").run("live", Date.now());
  db.prepare("INSERT INTO chunks (upload, seq, bytes) VALUES (?, 0, ?)").run("dead", bytesOf(9, 1));
  db.prepare("INSERT INTO chunks (upload, seq, bytes) VALUES (?, 0, ?)").run("live", bytesOf(9, 2));
  db.close();
  await s.p.open();
  assert.deepEqual([s.rows("uploads"), s.rows("chunks")], [1, 1], "only the stale upload goes");
});

Deno.test("open refuses a missing file and a database that is not a datastore", async () => {
  await using s = await store();
  const missing = await sqliteProvider.create({ path: "nope.db", pageSize: 10 }, context(s.dir));
  await assert.rejects(
    missing.open(),
    (e) => e instanceof NotFoundError && /nope\.db/.test(e.message),
  );
  const other = join(s.dir, "other.db");
  const db = new DatabaseSync(other);
  db.exec("CREATE TABLE notes (t TEXT)");
  db.close();
  const p = await sqliteProvider.create({ path: other, pageSize: 10 }, context(s.dir));
  await assert.rejects(p.open(), /not a modelsync datastore \(it has no records, blobs/);
  await p.close();
  await Deno.writeTextFile(join(s.dir, "text.db"), "this is not a database at all, not even close");
  const t = await sqliteProvider.create({ path: "text.db", pageSize: 10 }, context(s.dir));
  await assert.rejects(t.open(), /not a SQLite database/);
  await t.close();
});

Deno.test("processes racing on one database file: one create wins, no increment is lost", async () => {
  await using s = await store();
  await s.p.createRecord("race/counter", new TextEncoder().encode("0"));
  const start = join(s.dir, "go");
  const n = 4;
  const rounds = 100;
  const worker = new URL("./testdata/contender.ts", import.meta.url).pathname;
  const procs = Array.from({ length: n }, () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", worker, s.path, start, String(rounds)],
      stdout: "piped",
      stderr: "piped",
    }).output());
  // Start them together, once every one has its database open.
  for (let i = 0; (await readyCount(s.dir)) < n; i++) {
    assert.ok(i < 4_000, "the contenders did not start");
    await new Promise((r) => setTimeout(r, 5));
  }
  await Deno.writeTextFile(start, "go");
  const results = (await Promise.all(procs)).map((r) => {
    assert.ok(r.success, new TextDecoder().decode(r.stderr));
    return JSON.parse(new TextDecoder().decode(r.stdout)) as { created: boolean; lost: number };
  });
  assert.equal(results.filter((r) => r.created).length, 1, "not exactly one create won");
  const counter = await s.p.getRecord("race/counter");
  const lost = results.reduce((sum, r) => sum + r.lost, 0);
  assert.equal(
    new TextDecoder().decode(counter!.bytes),
    String(n * rounds),
    `an increment was lost (${lost} replaces were refused and retried)`,
  );
});

async function readyCount(dir: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(dir)) if (e.name.startsWith("go.")) n++;
  return n;
}
