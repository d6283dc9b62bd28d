import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  ConflictError,
  ContentChangedError,
  CorruptError,
  DatastoreError,
  ModelsyncError,
  NotFoundError,
} from "../../errors.ts";
import { makeManifest } from "../../model/manifest.ts";
import type { ProviderContext } from "../../provider/contract.ts";
import { filesystemProvider } from "./mod.ts";
import type { FilesystemProvider } from "./provider.ts";

const M = { type: "vpc", id: "m1" };
const BY = { holder: "t", host: "h", pid: 1 };

async function fresh(init = true): Promise<{ dir: string; root: string; p: FilesystemProvider }> {
  const dir = await Deno.makeTempDir({ prefix: "modelsync-fs-" });
  const ctx: ProviderContext = {
    callTimeoutMs: 30_000,
    host: "test-host",
    pid: Deno.pid,
    skewMarginMs: 50,
    baseDir: dir,
  };
  const p = await filesystemProvider.create({ path: "store" }, ctx) as FilesystemProvider;
  if (init) await p.init();
  return { dir, root: join(dir, "store"), p };
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

Deno.test("open: missing root and uninitialised root are NotFound with a remedy", async () => {
  const { dir, root, p } = await fresh(false);
  try {
    const missing = await p.open().catch((e) => e);
    assert.ok(missing instanceof NotFoundError);
    assert.equal(missing.exitCode, 3);
    assert.match(missing.message, /does not exist.*modelsync init --datastore filesystem:/);
    assert.ok(!missing.message.includes("\n"));
    await Deno.mkdir(root);
    const bare = await p.open().catch((e) => e);
    assert.ok(bare instanceof NotFoundError);
    assert.match(bare.message, /not initialised.*modelsync init/);
    await p.init();
    await p.init(); // an existing valid marker is fine
    await p.open();
    assert.deepEqual(JSON.parse(await Deno.readTextFile(join(root, "modelsync.json"))), {
      format: 1,
    });
    assert.deepEqual(p.describe(), { type: "filesystem", location: root });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("open: a garbled marker is corrupt, a newer format says upgrade", async () => {
  const { dir, root, p } = await fresh();
  try {
    await Deno.writeTextFile(join(root, "modelsync.json"), "{nope");
    await assert.rejects(p.open(), CorruptError);
    await assert.rejects(p.init(), CorruptError);
    await Deno.writeTextFile(join(root, "modelsync.json"), '{"format": 2}');
    await assert.rejects(p.open(), (e) => e instanceof DatastoreError && /upgrade/.test(e.message));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a vanished root reads as NotFound, never as empty, and is not recreated", async () => {
  const { dir, root, p } = await fresh();
  try {
    await Deno.remove(root, { recursive: true });
    await assert.rejects(p.listManifests(), NotFoundError);
    await assert.rejects(p.getManifest(M), NotFoundError);
    await assert.rejects(p.hasBlobs(["a".repeat(64)]), NotFoundError);
    const bytes = new Uint8Array([1, 2, 3]);
    await assert.rejects(p.putBlob(sha(bytes), { kind: "bytes", bytes }), NotFoundError);
    await assert.rejects(p.commitManifest(M, 0, makeManifest(M, 1, [], BY)), NotFoundError);
    await assert.rejects(p.probe(), NotFoundError);
    await assert.rejects(Deno.stat(root), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a planted manifest naming ../x is refused as corrupt", async () => {
  const { dir, root, p } = await fresh();
  try {
    const mdir = join(root, "manifests", "vpc", "m1");
    await Deno.mkdir(mdir, { recursive: true });
    const bad = makeManifest(M, 1, [], BY);
    bad.files = [{ path: "../x", sha256: "a".repeat(64), size: 1, executable: false }];
    await Deno.writeTextFile(join(mdir, "000000000001.json"), JSON.stringify(bad));
    const err = await p.getManifest(M).catch((e) => e);
    assert.ok(err instanceof CorruptError, String(err));
    assert.match(err.message, /"\.\.\/x"/);
    // Listing reads no bodies: the model is still listed.
    const listed = await p.listManifests();
    assert.deepEqual(listed.map((l) => l.model), [M]);
    assert.match(listed[0].version, /^1\./);
    await Deno.writeTextFile(join(mdir, "000000000002.json"), "{garbage");
    await assert.rejects(p.getManifest(M), CorruptError);
    const wrongGen = makeManifest(M, 7, [], BY);
    await Deno.writeTextFile(join(mdir, "000000000003.json"), JSON.stringify(wrongGen));
    await assert.rejects(p.getManifest(M), /holds generation 7/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("listManifests skips invalid names and empty model dirs", async () => {
  const { dir, root, p } = await fresh();
  try {
    await p.commitManifest(M, 0, makeManifest(M, 1, [], BY));
    const S = { type: "@acme/net", id: "Core.1" };
    await p.commitManifest(S, 0, makeManifest(S, 1, [], BY));
    const man = join(root, "manifests");
    await Deno.mkdir(join(man, "Bad Type", "m"), { recursive: true });
    await Deno.mkdir(join(man, "@", "x", "m"), { recursive: true });
    await Deno.mkdir(join(man, "vpc", "-bad"), { recursive: true });
    await Deno.mkdir(join(man, "vpc", "empty"), { recursive: true });
    await Deno.writeTextFile(join(man, "stray.json"), "{}");
    // Before open(): async calls; after it, on a local disk, synchronous ones.
    for (const opened of [false, true]) {
      if (opened) await p.open();
      const listed = await p.listManifests();
      listed.sort((a, b) => a.model.type.localeCompare(b.model.type));
      assert.deepEqual(listed.map((l) => l.model), [S, M]);
      assert.deepEqual((await p.getManifest(S))?.version, listed[0].version);
      assert.deepEqual((await p.getManifest(M))?.version, listed[1].version);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("commitManifest: CAS on the generation, programming errors are plain", async () => {
  const { dir, root, p } = await fresh();
  try {
    const first = await p.commitManifest(M, 0, makeManifest(M, 1, [], BY));
    assert.equal((await p.getManifest(M))?.version, first.version);
    const skip = await p.commitManifest(M, 2, makeManifest(M, 3, [], BY)).catch((e) => e);
    assert.ok(skip instanceof ConflictError && skip.current === 1, String(skip));
    const wrong = await p.commitManifest(M, 1, makeManifest(M, 3, [], BY)).catch((e) => e);
    assert.ok(wrong instanceof Error && !(wrong instanceof ModelsyncError));
    const other = await p.commitManifest(M, 1, makeManifest({ type: "vpc", id: "x" }, 2, [], BY))
      .catch((e) => e);
    assert.ok(other instanceof Error && !(other instanceof ModelsyncError));
    assert.deepEqual(await names(join(root, "manifests", "vpc", "m1")), ["000000000001.json"]);
    assert.deepEqual(await names(join(root, "tmp")), [], "temp files left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("version token names the generation file: a re-committed generation is new", async () => {
  const { dir, root, p } = await fresh();
  try {
    const v1 = await p.commitManifest(M, 0, makeManifest(M, 1, [], BY));
    const v2 = await p.commitManifest(M, 1, makeManifest(M, 2, [], BY));
    assert.notEqual(v2.version, v1.version);
    assert.equal((await p.listManifests())[0].version, v2.version);
    assert.equal((await p.getManifest(M))?.version, v2.version);
    // Someone removes the newest generation (a restore from backup), and
    // another writer commits generation 2 again with other content.
    await Deno.remove(join(root, "manifests", "vpc", "m1", "000000000002.json"));
    const other = makeManifest(M, 2, [], { holder: "another-writer", host: "h2", pid: 2 });
    const v2b = await p.commitManifest(M, 1, other);
    const listed = await p.listManifests();
    assert.equal(listed.length, 1);
    assert.notEqual(listed[0].version, v2.version, "a replaced generation file kept its token");
    assert.equal(listed[0].version, v2b.version, "commit and list disagree on the token");
    const got = await p.getManifest(M);
    assert.equal(got?.manifest.committedBy.holder, "another-writer");
    assert.equal(got?.version, listed[0].version, "get and list disagree on the token");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("blobs: layout, no temp leftovers, wrong hash stores nothing", async () => {
  const { dir, root, p } = await fresh();
  try {
    const bytes = new TextEncoder().encode("hello");
    const h = sha(bytes);
    await p.putBlob(h, { kind: "bytes", bytes });
    assert.deepEqual(await Deno.readFile(join(root, "blobs", h.slice(0, 2), h)), bytes);
    await Deno.writeTextFile(join(dir, "src"), "changed");
    await assert.rejects(
      p.putBlob(h, { kind: "file", path: join(dir, "src"), size: 5 }),
      ContentChangedError,
    );
    await assert.rejects(
      p.putBlob(h, { kind: "file", path: join(dir, "gone"), size: 5 }),
      ContentChangedError,
    );
    assert.deepEqual(await names(join(root, "tmp")), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hasBlobs answers many hashes of one prefix (readdir path) and few (stat path)", async () => {
  const { dir, root, p } = await fresh();
  try {
    const hex = (i: number) => `ab${i.toString(16).padStart(62, "0")}`;
    await Deno.mkdir(join(root, "blobs", "ab"), { recursive: true });
    for (let i = 0; i < 40; i++) await Deno.writeTextFile(join(root, "blobs", "ab", hex(i)), "");
    const query = Array.from({ length: 50 }, (_, i) => hex(i));
    const found = await p.hasBlobs(query);
    assert.equal(found.size, 40);
    assert.ok(found.has(hex(39)) && !found.has(hex(40)));
    assert.deepEqual(await p.hasBlobs([hex(1), hex(45)]), new Set([hex(1)]));
    assert.equal((await p.hasBlobs(query.map((q) => `cd${q.slice(2)}`))).size, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an aborted signal stops calls and leaves no temp files", async () => {
  const { dir, root, p } = await fresh();
  try {
    const ac = new AbortController();
    ac.abort();
    const bytes = new Uint8Array(10);
    await assert.rejects(
      p.putBlob(sha(bytes), { kind: "bytes", bytes }, { signal: ac.signal }),
      (e) => e instanceof DOMException && e.name === "AbortError",
    );
    await assert.rejects(p.listManifests({ signal: ac.signal }));
    await assert.rejects(p.lock({ kind: "global" }).inspect({ signal: ac.signal }));
    assert.deepEqual(await names(join(root, "tmp")), []);
    await p.putBlob(sha(bytes), { kind: "bytes", bytes });
    const stream = await p.getBlob(sha(bytes));
    const ac2 = new AbortController();
    const reading = await p.getBlob(sha(bytes), { signal: ac2.signal });
    ac2.abort();
    await assert.rejects(new Response(reading).arrayBuffer());
    await stream.cancel();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("probe: every check holds on a local directory and the probe dir is removed", async () => {
  const { dir, root, p } = await fresh();
  try {
    const checks = await p.probe();
    assert.equal(checks.length, 6);
    for (const c of checks) assert.ok(c.ok, `${c.name}: ${c.detail}`);
    assert.ok(checks.some((c) => c.capability === "atomicCommit"));
    assert.deepEqual(await names(join(root, "tmp")), []);
    assert.deepEqual(p.capabilities(), {
      scopedSync: true,
      atomicCommit: true,
      serverTime: false,
      maxConcurrency: 16,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
