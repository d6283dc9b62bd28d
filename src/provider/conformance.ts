/**
 * The provider conformance kit v2 (public API, `./testing` export): one
 * call checks each primitive of a provider (blobs and records, including 8
 * concurrent conditional writers of one record with exactly one winner,
 * list-after-write, versions that change on every write and a sane clock),
 * then runs the whole protocol over it (the datastore marker, commits and
 * history, leases with renewal, expiry, takeover and nonce-checked force
 * release), and the live probe of `caps --probe`.
 *
 * Requirements on the factory: each call returns a fresh, initialised
 * (`init()` done), isolated store (a new temp dir, prefix or schema); its
 * provider context uses `host: hostname()` from `node:os` (the kit plants
 * records from this host); the test needs `--allow-run` (one check spawns a
 * process to get a dead pid).
 *
 * @example
 * ```ts ignore
 * import { runConformance } from "@modelsync/cli/testing";
 * Deno.test("my provider conforms", (t) =>
 *   runConformance(t, { name: "mine", factory: () => makeFreshProvider() }));
 * ```
 * @module
 */
import assert from "node:assert/strict";
import { ContentChangedError, NotFoundError } from "../errors.ts";
import { hashBytes } from "../model/hash.ts";
import { capabilityProblems } from "./capabilities.ts";
import type { Capabilities, Provider } from "./contract.ts";
import { listAllRecords } from "./keys.ts";
import { runProbe } from "./probe.ts";
import { protocolChecks } from "./_conformance_protocol.ts";

/** How to run the kit. */
export interface ConformanceOptions {
  name: string;
  /** Returns a fresh, initialised, isolated store each call. */
  factory: () => Promise<Provider>;
  /** Concurrent writers / committers / contenders in the race checks (default 8). */
  contenders?: number;
  /**
   * How long the expiry checks wait after taking a 300 ms lease before they
   * expect it stale. Default: 650 ms, plus twice `clockResolutionMs` for a
   * store that judges expiry by its own clock.
   */
  expiryWaitMs?: number;
}

/** What each check receives. */
export interface CheckContext {
  contenders: number;
  expiryWaitMs: number;
  caps: Capabilities;
}

/** One behaviour check; stands alone with a fresh store from the factory. */
export interface ConformanceCheck {
  name: string;
  run(factory: () => Promise<Provider>, ctx: CheckContext): Promise<void>;
}

/** Runs `fn` on a fresh store and closes it. */
export async function withStore(
  factory: () => Promise<Provider>,
  fn: (p: Provider) => Promise<void>,
): Promise<void> {
  const p = await factory();
  try {
    await fn(p);
  } finally {
    await p.close();
  }
}

/** `n` random bytes. */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65_536) crypto.getRandomValues(out.subarray(i, i + 65_536));
  return out;
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

const blobChecks: ConformanceCheck[] = [{
  name: "blobs: round trip",
  run: (factory) =>
    withStore(factory, async (p) => {
      const dir = await Deno.makeTempDir({ prefix: "modelsync-conf-" });
      try {
        const small = randomBytes(1000);
        const big = randomBytes(5 * 1024 * 1024 + 17);
        const fromFile = randomBytes(3000);
        const [hs, hb, hf] = [hashBytes(small), hashBytes(big), hashBytes(fromFile)];
        await Deno.writeFile(`${dir}/big`, big);
        await Deno.writeFile(`${dir}/f`, fromFile);
        await p.putBlob(hs, { kind: "bytes", bytes: small });
        await p.putBlob(hs, { kind: "bytes", bytes: small }); // twice is fine
        await p.putBlob(hf, { kind: "file", path: `${dir}/f`, size: fromFile.length });
        await p.putBlob(hb, { kind: "file", path: `${dir}/big`, size: big.length });
        const missing = hashBytes(randomBytes(10));
        assert.deepEqual(await p.hasBlobs([hs, hb, hf, missing]), new Set([hs, hb, hf]));
        for (const [h, bytes] of [[hs, small], [hb, big], [hf, fromFile]] as const) {
          const got = await readAll(await p.getBlob(h));
          assert.equal(got.length, bytes.length, "a blob read back has the wrong length");
          assert.equal(hashBytes(got), h, "a blob read back has the wrong content");
        }
        await assert.rejects(
          p.putBlob(missing, { kind: "bytes", bytes: randomBytes(500) }),
          ContentChangedError,
          "putting bytes under a wrong hash must throw ContentChangedError",
        );
        await assert.rejects(
          p.putBlob(missing, { kind: "file", path: `${dir}/f`, size: fromFile.length }),
          ContentChangedError,
          "putting a file under a wrong hash must throw ContentChangedError",
        );
        assert.equal((await p.hasBlobs([missing])).size, 0, "a blob with a wrong hash was stored");
        await assert.rejects(p.getBlob(missing), NotFoundError, "a missing blob must be NotFound");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }),
}, {
  name: "blobs: list and delete",
  run: (factory) =>
    withStore(factory, async (p) => {
      const blobs = [randomBytes(10), randomBytes(2000), randomBytes(33)];
      const hashes = blobs.map(hashBytes);
      for (const [i, b] of blobs.entries()) await p.putBlob(hashes[i], { kind: "bytes", bytes: b });
      const listed = new Map<string, number>();
      let cursor: string | undefined;
      for (let i = 0; i < 10_000; i++) {
        const page = await p.listBlobs(cursor === undefined ? {} : { cursor });
        for (const b of page.items) listed.set(b.hash, b.size);
        if (page.cursor === undefined) break;
        cursor = page.cursor;
      }
      for (const [i, h] of hashes.entries()) {
        assert.equal(listed.get(h), blobs[i].length, "a stored blob is not listed with its size");
      }
      await p.deleteBlob(hashes[0]);
      await p.deleteBlob(hashes[0]); // twice is fine
      assert.deepEqual(await p.hasBlobs(hashes), new Set(hashes.slice(1)), "deleteBlob failed");
      assert.deepEqual(
        await p.hasBlobs(hashes, { fresh: true }),
        new Set(hashes.slice(1)),
        "hasBlobs with fresh: true must answer from the store",
      );
      await assert.rejects(p.getBlob(hashes[0]), NotFoundError, "a deleted blob can be read");
    }),
}, {
  name: "blobs: ranged reads",
  run: (factory, { caps }) =>
    withStore(factory, async (p) => {
      if (!caps.rangedReads) return;
      const b = randomBytes(300_000);
      const h = hashBytes(b);
      await p.putBlob(h, { kind: "bytes", bytes: b });
      for (const range of [{ offset: 0, length: 10 }, { offset: 123_456, length: 70_000 }]) {
        const got = await readAll(await p.getBlob(h, { range }));
        assert.deepEqual(got, b.subarray(range.offset, range.offset + range.length));
      }
      const tail = await readAll(await p.getBlob(h, { range: { offset: 299_990, length: 10 } }));
      assert.deepEqual(tail, b.subarray(299_990), "the last bytes of a blob by range");
    }),
}];

const recordChecks: ConformanceCheck[] = [{
  name: "records: create, get, replace, delete",
  run: (factory) =>
    withStore(factory, async (p) => {
      const k = "conf/a";
      assert.equal(await p.getRecord(k), null, "a fresh store has the record");
      assert.equal(await p.replaceRecord(k, enc("x"), "no-such-version"), null);
      assert.equal(await p.deleteRecord(k, "no-such-version"), false);
      const v1 = await p.createRecord(k, enc("one"));
      assert.ok(v1 !== null, "a fresh record could not be created");
      const got = await p.getRecord(k);
      assert.equal(got && dec(got.bytes), "one");
      assert.equal(got?.version, v1, "get returns another version than create");
      assert.equal(await p.createRecord(k, enc("two")), null, "a second create succeeded");
      assert.equal(dec((await p.getRecord(k))!.bytes), "one", "a refused create changed it");
      const v2 = await p.replaceRecord(k, enc("two"), v1);
      assert.ok(v2 !== null && v2 !== v1, "a replace on the current version failed");
      assert.equal(await p.replaceRecord(k, enc("stale"), v1), null, "a stale replace won");
      assert.equal(await p.deleteRecord(k, v1), false, "a stale delete won");
      assert.equal(dec((await p.getRecord(k))!.bytes), "two");
      assert.equal(await p.deleteRecord(k, v2), true, "a delete on the current version failed");
      assert.equal(await p.getRecord(k), null, "a deleted record can be read");
      assert.equal(await p.replaceRecord(k, enc("back"), v2), null, "a deleted record replaced");
      const v3 = await p.createRecord(k, enc("again"));
      assert.ok(v3 !== null && v3 !== v1 && v3 !== v2, "re-creating gave an old version");
      const big = "x".repeat(4 * 1024 * 1024);
      const vb = await p.createRecord("conf/big", enc(big));
      assert.ok(vb !== null);
      assert.equal(dec((await p.getRecord("conf/big"))!.bytes), big, "a 4 MiB record");
    }),
}, {
  name: "records: concurrent conditional writers, exactly one wins",
  run: (factory, { contenders: n }) =>
    withStore(factory, async (p) => {
      const creates = await Promise.all(
        Array.from({ length: n }, (_, i) => p.createRecord("conf/race", enc(`w${i}`))),
      );
      const won = creates.flatMap((v, i) => (v === null ? [] : [i]));
      assert.equal(won.length, 1, `${won.length} of ${n} concurrent creates won`);
      let cur = await p.getRecord("conf/race");
      assert.equal(cur && dec(cur.bytes), `w${won[0]}`, "the winner's bytes were not kept");
      const replaces = await Promise.all(
        Array.from(
          { length: n },
          (_, i) => p.replaceRecord("conf/race", enc(`r${i}`), cur!.version),
        ),
      );
      const rwon = replaces.flatMap((v, i) => (v === null ? [] : [i]));
      assert.equal(rwon.length, 1, `${rwon.length} of ${n} concurrent replaces won`);
      cur = await p.getRecord("conf/race");
      assert.equal(cur && dec(cur.bytes), `r${rwon[0]}`);
      const deletes = await Promise.all(
        Array.from({ length: n }, () => p.deleteRecord("conf/race", cur!.version)),
      );
      assert.equal(deletes.filter(Boolean).length, 1, "concurrent deletes: not exactly one won");
    }),
}, {
  name: "records: versions change on every write",
  run: (factory) =>
    withStore(factory, async (p) => {
      const seen = new Set<string>();
      let v = await p.createRecord("conf/v", enc("same"));
      for (let i = 0; i < 4; i++) {
        assert.ok(v !== null, "a write of identical bytes was refused");
        assert.ok(!seen.has(v), `version ${v} came back`);
        seen.add(v);
        v = await p.replaceRecord("conf/v", enc("same"), v);
      }
      assert.ok(v !== null && !seen.has(v));
      assert.ok(await p.deleteRecord("conf/v", v));
      const again = await p.createRecord("conf/v", enc("same"));
      assert.ok(again !== null && !seen.has(again) && again !== v, "a version came back");
    }),
}, {
  name: "records: list-after-write, prefixes and pages",
  run: (factory) =>
    withStore(factory, async (p) => {
      const keys = Array.from({ length: 25 }, (_, i) => `conf/list/k${String(i).padStart(2, "0")}`);
      const versions = new Map<string, string>();
      for (const k of keys) versions.set(k, (await p.createRecord(k, enc(k)))!);
      await p.createRecord("conf/listing/other", enc("o"));
      await p.createRecord("conf/lis", enc("o"));
      const listed = await listAllRecords(p, "conf/list/");
      assert.deepEqual(listed.map((r) => r.key), keys, "listRecords: wrong keys or order");
      for (const r of listed) assert.equal(r.version, versions.get(r.key), "listed version");
      const deep = await listAllRecords(p, "conf/");
      assert.ok(deep.some((r) => r.key === "conf/listing/other") && deep.length === 27);
      assert.ok(await p.deleteRecord(keys[3], versions.get(keys[3])!));
      const after = await listAllRecords(p, "conf/list/");
      assert.ok(!after.some((r) => r.key === keys[3]), "a deleted record is still listed");
      assert.equal((await listAllRecords(p, "conf/nothing/")).length, 0);
    }),
}, {
  name: "records: the store's clock",
  run: (factory, { caps }) =>
    withStore(factory, async (p) => {
      const before = Date.now();
      await p.createRecord("conf/clock", enc("t"));
      const got = await p.getRecord("conf/clock");
      const after = Date.now();
      assert.ok(got !== null);
      const slack = 30_000 + (caps.clockResolutionMs ?? 0);
      if (caps.serverTime) {
        assert.ok(got.storeNowMs !== undefined, "serverTime without storeNowMs on getRecord");
        assert.ok(got.modifiedMs !== undefined, "serverTime without modifiedMs on getRecord");
      }
      if (got.storeNowMs !== undefined) {
        assert.ok(Math.abs(got.storeNowMs - after) < slack, "the store's clock is far off");
        assert.ok(
          got.modifiedMs === undefined ||
            got.modifiedMs <= got.storeNowMs + (caps.clockResolutionMs ?? 0) + 1_000,
          "a record was written after the store's now",
        );
      }
      if (got.modifiedMs !== undefined) {
        assert.ok(Math.abs(got.modifiedMs - before) < slack, "the record's write time is far off");
      }
    }),
}];

const probeChecks: ConformanceCheck[] = [{
  name: "capabilities are sane",
  run: (factory) =>
    withStore(factory, async (p) => {
      if (typeof p.capabilities !== "function") {
        assert.fail(`provider ${p.type} has no capabilities(): declare them as plain data.`);
      }
      assert.deepEqual(capabilityProblems(p.capabilities()), [], "capability problems");
      await Promise.resolve();
    }),
}, {
  name: "caps --probe passes every check",
  run: (factory) =>
    withStore(factory, async (p) => {
      const checks = await runProbe(p);
      const failed = checks.filter((c) => !c.ok);
      assert.deepEqual(failed, [], "probe checks failed");
      assert.equal((await listAllRecords(p, "probe/")).length, 0, "the probe left records");
    }),
}];

/** Every check, in order. */
export const conformanceChecks: ConformanceCheck[] = [
  ...blobChecks,
  ...recordChecks,
  ...protocolChecks,
  ...probeChecks,
];

/** Lease length used by the expiry checks. */
export const SHORT_TTL_MS = 300;

/** Registers every check as a `t.step` inside one Deno test. */
export async function runConformance(t: Deno.TestContext, opts: ConformanceOptions): Promise<void> {
  const probe = await opts.factory();
  let caps: Capabilities;
  try {
    caps = probe.capabilities?.() ?? {
      scopedSync: false,
      atomicCommit: false,
      serverTime: false,
      rangedReads: false,
      maxConcurrency: 1,
    };
  } finally {
    await probe.close();
  }
  const resolution = caps.serverTime ? (caps.clockResolutionMs ?? 0) : 0;
  const ctx: CheckContext = {
    contenders: opts.contenders ?? 8,
    expiryWaitMs: opts.expiryWaitMs ?? SHORT_TTL_MS + 350 + 2 * resolution,
    caps,
  };
  for (const check of conformanceChecks) {
    await t.step(`${opts.name}: ${check.name}`, () => check.run(opts.factory, ctx));
  }
}
