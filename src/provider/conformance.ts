/**
 * The provider conformance kit (public API, `testing` export): one call runs
 * every behaviour check of SPEC §4 against a provider factory.
 *
 * Requirements on the factory: each call returns a fresh, initialised,
 * isolated datastore (new temp dir / prefix / schema); its provider context
 * uses `host: hostname()` from `node:os` (the kit plants same-host records)
 * and `skewMarginMs <= 100` (the kit waits for 300 ms leases to expire).
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
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { ConflictError, ContentChangedError, LeaseLostError, NotFoundError } from "../errors.ts";
import { type FileEntry, makeManifest } from "../model/manifest.ts";
import type { ModelRef } from "../model/ref.ts";
import { capabilityProblems, readCapabilities } from "./capabilities.ts";
import type { LockKey, LockRequest, Provider } from "./contract.ts";

/** How to run the kit. */
export interface ConformanceOptions {
  name: string;
  /** Returns a fresh, initialised, isolated datastore each call (new temp dir / new prefix). Providers it creates must use skewMarginMs <= 100. */
  factory: () => Promise<Provider>;
  /** Concurrent committers / contenders in the race checks (default 8). */
  committers?: number;
  /**
   * How long the expiry checks wait after taking a 300 ms lease before they
   * expect it stale (default 650 ms). A provider that judges expiry by a
   * server clock with 1 s resolution (S3 `Date` vs `Last-Modified`) needs
   * about 3 s.
   */
  expiryWaitMs?: number;
}

/** One behaviour check; stands alone with a fresh datastore from the factory. */
export interface ConformanceCheck {
  name: string;
  run(
    factory: () => Promise<Provider>,
    opts: { committers: number; expiryWaitMs?: number },
  ): Promise<void>;
}

/** Lease length used by the expiry checks. */
const SHORT_TTL_MS = 300;
/** Wait past SHORT_TTL_MS: the ttl, the largest allowed skew margin, and slack. */
const EXPIRY_WAIT_MS = SHORT_TTL_MS + 100 + 250;
const OTHER_HOST = "conformance-other-host";
const M1: ModelRef = { type: "conf", id: "m1" };
const M2: ModelRef = { type: "@s/n", id: "m2" };

async function withProvider(
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

function sha(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65_536) crypto.getRandomValues(out.subarray(i, i + 65_536));
  return out;
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function req(holder: string, extra: Partial<LockRequest> = {}): LockRequest {
  return {
    holder,
    host: hostname(),
    pid: Deno.pid,
    operation: "conformance",
    ttlMs: 30_000,
    ...extra,
  };
}

function manifest(
  model: ModelRef,
  generation: number,
  holder = "conformance",
  files: FileEntry[] = [],
) {
  return makeManifest(model, generation, files, { holder, host: hostname(), pid: Deno.pid });
}

async function staleLock(p: Provider, key: LockKey, waitMs: number): Promise<string> {
  const old = await p.lock(key).tryAcquire(req("old", { host: OTHER_HOST, ttlMs: SHORT_TTL_MS }));
  assert.ok(old.acquired, "a free lock could not be acquired");
  await sleep(waitMs);
  return old.record.nonce;
}

const blobChecks: ConformanceCheck[] = [{
  name: "blob round trip",
  run: (factory) =>
    withProvider(factory, async (p) => {
      const dir = await Deno.makeTempDir({ prefix: "modelsync-conf-" });
      try {
        const small = randomBytes(1000);
        const big = randomBytes(5 * 1024 * 1024 + 17);
        const fromFile = randomBytes(3000);
        const [hs, hb, hf] = [sha(small), sha(big), sha(fromFile)];
        await Deno.writeFile(`${dir}/big`, big);
        await Deno.writeFile(`${dir}/f`, fromFile);
        await p.putBlob(hs, { kind: "bytes", bytes: small });
        await p.putBlob(hs, { kind: "bytes", bytes: small }); // twice is fine
        await p.putBlob(hf, { kind: "file", path: `${dir}/f`, size: fromFile.length });
        await p.putBlob(hb, { kind: "file", path: `${dir}/big`, size: big.length });
        const missing = sha(randomBytes(10));
        assert.deepEqual(await p.hasBlobs([hs, hb, hf, missing]), new Set([hs, hb, hf]));
        for (const [h, bytes] of [[hs, small], [hb, big], [hf, fromFile]] as const) {
          const got = await readAll(await p.getBlob(h));
          assert.equal(got.length, bytes.length, "a blob read back has the wrong length");
          assert.equal(sha(got), h, "a blob read back has the wrong content");
        }
        const other = randomBytes(500);
        await assert.rejects(
          p.putBlob(missing, { kind: "bytes", bytes: other }),
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
}];

const manifestChecks: ConformanceCheck[] = [{
  name: "manifest commit, read and list",
  run: (factory) =>
    withProvider(factory, async (p) => {
      const bytes = randomBytes(64);
      const h = sha(bytes);
      await p.putBlob(h, { kind: "bytes", bytes });
      const files = [{ path: "dir/a.bin", sha256: h, size: 64, executable: true }];
      assert.equal(await p.getManifest(M1), null, "a fresh datastore has a manifest");
      assert.equal((await p.listManifests()).length, 0, "a fresh datastore lists manifests");
      const v1 = (await p.commitManifest(M1, 0, manifest(M1, 1, "a", files))).version;
      const got = await p.getManifest(M1);
      assert.ok(got !== null, "a committed manifest reads as missing");
      assert.equal(got.version, v1);
      assert.equal(got.manifest.generation, 1);
      assert.equal(got.manifest.model, "conf/m1");
      assert.deepEqual(got.manifest.files, files);
      const v2s = (await p.commitManifest(M2, 0, manifest(M2, 1))).version;
      const listed = await p.listManifests();
      const byKey = new Map(listed.map((l) => [`${l.model.type}/${l.model.id}`, l.version]));
      assert.deepEqual([...byKey.keys()].sort(), ["@s/n/m2", "conf/m1"]);
      assert.equal(byKey.get("conf/m1"), v1);
      assert.equal(byKey.get("@s/n/m2"), v2s);
      assert.equal((await p.getManifest(M2))?.manifest.model, "@s/n/m2");
      const v2 = (await p.commitManifest(M1, 1, manifest(M1, 2, "b", files))).version;
      assert.notEqual(v2, v1, "a new generation must change the version token");
      assert.equal((await p.getManifest(M1))?.version, v2);
      const again = (await p.listManifests()).find((l) => l.model.id === "m1");
      assert.equal(again?.version, v2, "listManifests shows an old version token");
    }),
}, {
  name: "stale expected generation conflicts",
  run: (factory) =>
    withProvider(factory, async (p) => {
      await p.commitManifest(M1, 0, manifest(M1, 1));
      await p.commitManifest(M1, 1, manifest(M1, 2));
      for (const expected of [1, 0, 5]) {
        const err = await p.commitManifest(M1, expected, manifest(M1, expected + 1)).then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(err instanceof ConflictError, `expected ${expected} (current 2) must conflict`);
        if (err.current !== undefined) assert.equal(err.current, 2, "ConflictError.current");
      }
      assert.equal((await p.getManifest(M1))?.manifest.generation, 2);
    }),
}, {
  name: "concurrent committers: exactly one wins",
  run: (factory, { committers }) =>
    withProvider(factory, async (p) => {
      for (const expected of [0, 1]) {
        const results = await Promise.allSettled(
          Array.from(
            { length: committers },
            (_, i) => p.commitManifest(M1, expected, manifest(M1, expected + 1, `c${i}`)),
          ),
        );
        const won = results.flatMap((r, i) => r.status === "fulfilled" ? [i] : []);
        assert.equal(won.length, 1, `${won.length} of ${committers} committers won`);
        for (const r of results) {
          if (r.status === "rejected") {
            assert.ok(r.reason instanceof ConflictError, `a loser threw ${r.reason}`);
          }
        }
        const cur = await p.getManifest(M1);
        assert.equal(cur?.manifest.generation, expected + 1);
        assert.equal(cur?.manifest.committedBy.holder, `c${won[0]}`, "the winner was not kept");
      }
    }),
}, {
  name: "tombstone commits",
  run: (factory) =>
    withProvider(factory, async (p) => {
      const bytes = randomBytes(8);
      await p.putBlob(sha(bytes), { kind: "bytes", bytes });
      const f = [{ path: "x", sha256: sha(bytes), size: 8, executable: false }];
      await p.commitManifest(M1, 0, manifest(M1, 1, "a", f));
      await p.commitManifest(M1, 1, manifest(M1, 2, "a", []));
      const got = await p.getManifest(M1);
      assert.equal(got?.manifest.generation, 2);
      assert.equal(got?.manifest.files.length, 0, "a tombstone must read back empty");
      assert.ok((await p.listManifests()).some((l) => l.model.id === "m1"), "tombstone unlisted");
    }),
}];

const MK: LockKey = { kind: "model", model: M1 };

const lockChecks: ConformanceCheck[] = [{
  name: "lock exclusion",
  run: (factory) =>
    withProvider(factory, async (p) => {
      const h = p.lock(MK);
      assert.equal(await h.inspect(), null, "a fresh datastore has a lock");
      const a = await h.tryAcquire(req("a"));
      assert.ok(a.acquired, "a free lock could not be acquired");
      assert.equal(a.tookOver, undefined, "acquiring a free lock reported a takeover");
      const b = await p.lock(MK).tryAcquire(req("b"));
      assert.ok(!b.acquired, "a held lock was acquired a second time");
      assert.equal(b.current.record.nonce, a.record.nonce, "current is not the first holder");
      assert.equal(b.current.record.holder, "a");
      assert.equal(b.current.stale, false, "a fresh lock was judged stale");
      const g = await p.lock({ kind: "global" }).tryAcquire(req("g"));
      assert.ok(g.acquired, "the global lock is not independent of model locks");
      const c = await p.lock({ kind: "model", model: M2 }).tryAcquire(req("c"));
      assert.ok(c.acquired, "locks of different models are not independent");
      assert.equal((await h.inspect())?.record.nonce, a.record.nonce);
      await h.release(a.record.nonce);
      await p.lock({ kind: "global" }).release(g.record.nonce);
      await p.lock({ kind: "model", model: M2 }).release(c.record.nonce);
    }),
}, {
  name: "lock renewal",
  run: (factory) =>
    withProvider(factory, async (p) => {
      const h = p.lock(MK);
      const a = await h.tryAcquire(req("a"));
      assert.ok(a.acquired);
      await sleep(20);
      const r = await h.renew(a.record.nonce);
      assert.equal(r.nonce, a.record.nonce);
      assert.ok(
        Date.parse(r.renewedAt) > Date.parse(a.record.renewedAt),
        "renewedAt did not advance",
      );
      assert.equal((await h.inspect())?.record.renewedAt, r.renewedAt, "renewal was not stored");
      await assert.rejects(h.renew("not-the-nonce"), LeaseLostError, "renew with a wrong nonce");
      assert.equal((await h.inspect())?.record.nonce, a.record.nonce, "a wrong renew changed it");
      await h.release(a.record.nonce);
      await assert.rejects(h.renew(a.record.nonce), LeaseLostError, "renew after release");
    }),
}, {
  name: "lock release",
  run: (factory) =>
    withProvider(factory, async (p) => {
      const h = p.lock(MK);
      const a = await h.tryAcquire(req("a"));
      assert.ok(a.acquired);
      await h.release("not-the-nonce");
      assert.equal((await h.inspect())?.record.nonce, a.record.nonce, "a wrong release freed it");
      await h.release(a.record.nonce);
      assert.equal(await h.inspect(), null, "a released lock is still held");
      const b = await h.tryAcquire(req("b"));
      assert.ok(b.acquired && b.tookOver === undefined, "a released lock could not be taken");
      await h.release(b.record.nonce);
    }),
}, {
  name: "lock expiry and takeover",
  run: (factory, { expiryWaitMs = EXPIRY_WAIT_MS }) =>
    withProvider(factory, async (p) => {
      const h = p.lock(MK);
      const old = await h.tryAcquire(req("old", { host: OTHER_HOST, ttlMs: SHORT_TTL_MS }));
      assert.ok(old.acquired);
      const early = await h.tryAcquire(req("early"));
      assert.ok(!early.acquired, "a live lease was taken over before it expired");
      await sleep(expiryWaitMs);
      const info = await h.inspect();
      assert.ok(info?.stale, "an expired lease is not judged stale");
      const next = await h.tryAcquire(req("new"));
      assert.ok(next.acquired, "an expired lease could not be taken over");
      assert.equal(next.tookOver?.nonce, old.record.nonce, "tookOver must name the old record");
      await assert.rejects(h.renew(old.record.nonce), LeaseLostError, "the old holder renewed");
      await h.release(old.record.nonce);
      assert.equal((await h.inspect())?.record.nonce, next.record.nonce, "old holder released it");
      await h.release(next.record.nonce);
    }),
}, {
  name: "concurrent takeover: exactly one wins",
  run: (factory, { committers, expiryWaitMs = EXPIRY_WAIT_MS }) =>
    withProvider(factory, async (p) => {
      const oldNonce = await staleLock(p, MK, expiryWaitMs);
      const results = await Promise.all(
        Array.from({ length: committers }, (_, i) => p.lock(MK).tryAcquire(req(`t${i}`))),
      );
      const won = results.filter((r) => r.acquired);
      assert.equal(won.length, 1, `${won.length} of ${committers} contenders took the lock over`);
      const w = won[0];
      assert.ok(w.acquired && w.tookOver?.nonce === oldNonce, "the takeover names the old record");
      assert.equal((await p.lock(MK).inspect())?.record.nonce, w.record.nonce);
    }),
}, {
  name: "same-host dead pid is stale",
  run: (factory) =>
    withProvider(factory, async (p) => {
      const child = new Deno.Command("true", { stdout: "null", stderr: "null" }).spawn();
      await child.status;
      const h = p.lock(MK);
      const dead = await h.tryAcquire(req("dead", { pid: child.pid, ttlMs: 60_000 }));
      assert.ok(dead.acquired);
      assert.ok((await h.inspect())?.stale, `a lock of dead pid ${child.pid} on this host is live`);
      const next = await h.tryAcquire(req("alive"));
      assert.ok(next.acquired, "a lock of a dead pid on this host could not be taken over");
      assert.equal(next.tookOver?.nonce, dead.record.nonce);
      await h.release(next.record.nonce);
    }),
}, {
  name: "force release is nonce-checked",
  run: (factory) =>
    withProvider(factory, async (p) => {
      const h = p.lock(MK);
      const a = await h.tryAcquire(req("a"));
      assert.ok(a.acquired);
      assert.equal(await h.forceRelease("not-the-nonce"), false, "wrong nonce force-released");
      assert.equal((await h.inspect())?.record.nonce, a.record.nonce, "wrong nonce freed it");
      assert.equal(await h.forceRelease(a.record.nonce), true, "right nonce did not release");
      assert.equal(await h.inspect(), null, "a force-released lock is still held");
      assert.equal(await h.forceRelease(a.record.nonce), false, "a free lock force-released");
    }),
}, {
  name: "listLocks shows global and model locks",
  run: (factory) =>
    withProvider(factory, async (p) => {
      const keys: LockKey[] = [{ kind: "global" }, MK, { kind: "model", model: M2 }];
      const nonces: string[] = [];
      for (const k of keys) {
        const r = await p.lock(k).tryAcquire(req("l"));
        assert.ok(r.acquired);
        nonces.push(r.record.nonce);
      }
      const listed = await p.listLocks();
      assert.deepEqual(listed.map((l) => l.record.key).sort(), ["@s/n/m2", "conf/m1", "global"]);
      assert.ok(listed.every((l) => !l.stale && l.ttlLeftMs > 0), "fresh locks listed as stale");
      for (const [i, k] of keys.entries()) await p.lock(k).release(nonces[i]);
      assert.deepEqual(await p.listLocks(), [], "released locks are still listed");
    }),
}, {
  name: "capabilities are sane",
  run: (factory) =>
    withProvider(factory, async (p) => {
      if (typeof p.capabilities !== "function") {
        assert.fail(`provider ${p.type} has no capabilities(): declare them as plain data.`);
      }
      assert.deepEqual(capabilityProblems(p.capabilities()), [], "capability problems");
      assert.deepEqual(readCapabilities(p, []).warnings, [], "reading capabilities warned");
      await Promise.resolve();
    }),
}, {
  name: "capability fallbacks",
  run: (factory) =>
    withProvider(factory, async (p) => {
      const bad: Array<[string, Pick<Provider, "capabilities"> & { type: string }]> = [
        ["missing", { type: p.type }],
        ["throwing", {
          type: p.type,
          capabilities: () => {
            throw new Error("boom");
          },
        }],
        ["null", { type: p.type, capabilities: () => null as never }],
        ["a number", { type: p.type, capabilities: () => 42 as never }],
      ];
      for (const [what, provider] of bad) {
        const r = readCapabilities(provider, []);
        assert.ok(!r.caps.scopedSync && !r.caps.atomicCommit && !r.caps.serverTime, what);
        assert.ok(r.warnings.length > 0, `${what} capabilities gave no warning`);
      }
      assert.notDeepEqual(capabilityProblems(null), [], "null capabilities must fail");
      const real = p.capabilities?.() ?? readCapabilities(p, []).caps;
      const unsafe = { ...real, scopedSync: true, atomicCommit: false };
      assert.ok(capabilityProblems(unsafe).length > 0, "scopedSync without atomicCommit passed");
      const r = readCapabilities({ type: p.type, capabilities: () => unsafe }, []);
      assert.equal(r.caps.scopedSync, false, "scopedSync without atomicCommit was honoured");
      assert.ok(r.warnings.length > 0, "scopedSync without atomicCommit gave no warning");
      await Promise.resolve();
    }),
}];

/** Every check, in order. */
export const conformanceChecks: ConformanceCheck[] = [
  ...blobChecks,
  ...manifestChecks,
  ...lockChecks,
];

/** Registers every check as a `t.step` inside one Deno test. */
export async function runConformance(t: Deno.TestContext, opts: ConformanceOptions): Promise<void> {
  const committers = opts.committers ?? 8;
  const expiryWaitMs = opts.expiryWaitMs ?? EXPIRY_WAIT_MS;
  for (const check of conformanceChecks) {
    await t.step(
      `${opts.name}: ${check.name}`,
      () => check.run(opts.factory, { committers, expiryWaitMs }),
    );
  }
}
