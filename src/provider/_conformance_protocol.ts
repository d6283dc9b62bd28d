/**
 * The protocol half of the conformance kit: the datastore marker, commits
 * and history, and leases, run over a provider through {@linkcode Datastore}
 * exactly as the CLI runs them.
 *
 * @module
 */
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { ConflictError, LeaseLostError } from "../errors.ts";
import { type FileEntry, makeManifest } from "../model/manifest.ts";
import type { ModelRef } from "../model/ref.ts";
import type { LockKey, LockRequest } from "../lock/records.ts";
import { hashBytes } from "../model/hash.ts";
import type { Provider } from "./contract.ts";
import { Datastore } from "./datastore.ts";
import type { StoredManifest } from "../model/commits.ts";
import type { CheckContext, ConformanceCheck } from "./conformance.ts";

const SHORT_TTL_MS = 300;
const OTHER_HOST = "conformance-other-host";
const M1: ModelRef = { type: "conf", id: "m1" };
const M2: ModelRef = { type: "@s/n", id: "m2" };
const MK: LockKey = { kind: "model", model: M1 };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `fn` on a fresh store opened as a datastore, as the CLI opens one. */
async function withDatastore(
  factory: () => Promise<Provider>,
  ctx: CheckContext,
  fn: (ds: Datastore) => Promise<void>,
): Promise<void> {
  const p = await factory();
  const ds = new Datastore(p, { host: hostname(), pid: Deno.pid, skewMarginMs: 100 });
  try {
    await ds.init();
    await ds.open();
    ds.useCapabilities(ctx.caps);
    await fn(ds);
  } finally {
    await ds.close();
  }
}

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

function check(
  name: string,
  fn: (ds: Datastore, ctx: CheckContext) => Promise<void>,
): ConformanceCheck {
  return { name, run: (factory, ctx) => withDatastore(factory, ctx, (ds) => fn(ds, ctx)) };
}

/** The protocol checks, in order. */
export const protocolChecks: ConformanceCheck[] = [
  check("datastore marker", async (ds) => {
    assert.equal(ds.marker?.format, 2, "the marker does not say format 2");
    await ds.init(); // twice is fine
    await ds.open();
    assert.ok(
      ds.capabilities === undefined || ds.capabilities().limitation === undefined,
      "an honest store was judged to ignore conditional writes",
    );
  }),
  check("commits: first commit, read, list", async (ds) => {
    const bytes = crypto.getRandomValues(new Uint8Array(64));
    const h = hashBytes(bytes);
    await ds.putBlob(h, { kind: "bytes", bytes });
    const files = [{ path: "dir/a.bin", sha256: h, size: 64, executable: true }];
    assert.equal(await ds.getManifest(M1), null);
    assert.equal((await ds.listManifests()).length, 0);
    const c1 = await ds.commitManifest(M1, null, manifest(M1, 1, "a", files));
    const got = await ds.getManifest(M1);
    assert.equal(got?.version, c1.version);
    assert.deepEqual(got?.manifest.files, files);
    assert.equal(got?.manifest.parent, null);
    const c2 = await ds.commitManifest(M2, null, manifest(M2, 1));
    const listed = new Map(
      (await ds.listManifests()).map((l) => [`${l.model.type}/${l.model.id}`, l.version]),
    );
    assert.deepEqual([...listed.keys()].sort(), ["@s/n/m2", "conf/m1"]);
    assert.equal(listed.get("conf/m1"), c1.version);
    assert.equal(listed.get("@s/n/m2"), c2.version);
    const c3 = await ds.commitManifest(M1, got!, manifest(M1, 5, "b", files));
    assert.notEqual(c3.version, c1.version, "a commit must change the head's version");
    const head = await ds.getManifest(M1);
    assert.equal(head?.manifest.generation, 5, "a generation above the next was not kept");
    assert.deepEqual(head?.manifest.parent, { generation: 1, commit: got!.manifest.commit });
  }),
  check("commits: a stale head conflicts", async (ds) => {
    await ds.commitManifest(M1, null, manifest(M1, 1));
    const h1 = await ds.getManifest(M1);
    await ds.commitManifest(M1, h1, manifest(M1, 2));
    for (const stale of [null, h1]) {
      const err = await ds.commitManifest(M1, stale, manifest(M1, 3)).then(() => null, (e) => e);
      assert.ok(err instanceof ConflictError, "a commit on a stale head must conflict");
      assert.equal(err.current, 2, "ConflictError.current");
    }
    assert.equal((await ds.getManifest(M1))?.manifest.generation, 2);
  }),
  check("commits: concurrent committers, exactly one wins", async (ds, { contenders: n }) => {
    let head: StoredManifest | null = null;
    for (let round = 1; round <= 2; round++) {
      const expected: StoredManifest | null = head;
      const results: PromiseSettledResult<unknown>[] = await Promise.allSettled(
        Array.from(
          { length: n },
          (_, i) => ds.commitManifest(M1, expected, manifest(M1, round, `c${i}`)),
        ),
      );
      const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
      assert.equal(won.length, 1, `${won.length} of ${n} committers won`);
      for (const r of results) {
        if (r.status === "rejected") {
          assert.ok(r.reason instanceof ConflictError, `a loser threw ${r.reason}`);
        }
      }
      head = await ds.getManifest(M1);
      assert.equal(head?.manifest.committedBy.holder, `c${won[0]}`, "the winner was not kept");
    }
  }),
  check("history: every commit, newest first, tombstones included", async (ds) => {
    let head: StoredManifest | null = null;
    const commits: string[] = [];
    for (const [g, files] of [[1, 1], [2, 0], [4, 1]] as const) {
      const bytes = new TextEncoder().encode(`g${g}`);
      const entries = files === 0
        ? []
        : [{ path: "x", sha256: hashBytes(bytes), size: bytes.length, executable: false }];
      const c = await ds.commitManifest(M1, head, manifest(M1, g, "h", entries));
      commits.push(c.manifest.commit);
      head = await ds.getManifest(M1);
    }
    const seen = [];
    for await (const e of ds.history(M1)) seen.push(e.manifest);
    assert.deepEqual(seen.map((m) => m.generation), [4, 2, 1]);
    assert.deepEqual(seen.map((m) => m.commit), [...commits].reverse());
    assert.equal(seen[1].files.length, 0, "a tombstone in history must read back empty");
  }),
  check("locks: exclusion", async (ds) => {
    const h = ds.lock(MK);
    assert.equal(await h.inspect(), null);
    const a = await h.tryAcquire(req("a"));
    assert.ok(a.acquired && a.tookOver === undefined);
    const b = await ds.lock(MK).tryAcquire(req("b"));
    assert.ok(!b.acquired, "a held lock was acquired a second time");
    assert.equal(b.current.record.nonce, a.record.nonce);
    assert.equal(b.current.stale, false, "a fresh lock was judged stale");
    const g = await ds.lock({ kind: "global" }).tryAcquire(req("g"));
    assert.ok(g.acquired, "the global lock is not independent of model locks");
    const c = await ds.lock({ kind: "model", model: M2 }).tryAcquire(req("c"));
    assert.ok(c.acquired, "locks of different models are not independent");
    const listed = await ds.listLocks();
    assert.deepEqual(listed.map((l) => l.record.key).sort(), ["@s/n/m2", "conf/m1", "global"]);
    await h.release(a.record.nonce);
    await ds.lock({ kind: "global" }).release(g.record.nonce);
    await ds.lock({ kind: "model", model: M2 }).release(c.record.nonce);
    assert.deepEqual(await ds.listLocks(), [], "released locks are still listed");
  }),
  check("locks: renewal and release", async (ds) => {
    const h = ds.lock(MK);
    const a = await h.tryAcquire(req("a"));
    assert.ok(a.acquired);
    await sleep(20);
    const r = await h.renew(a.record.nonce);
    assert.ok(
      Date.parse(r.renewedAt) > Date.parse(a.record.renewedAt),
      "renewedAt did not advance",
    );
    assert.equal((await h.inspect())?.record.renewedAt, r.renewedAt, "the renewal was not stored");
    await assert.rejects(h.renew("not-the-nonce"), LeaseLostError);
    await h.release("not-the-nonce");
    assert.equal((await h.inspect())?.record.nonce, a.record.nonce, "a wrong release freed it");
    await h.release(a.record.nonce);
    assert.equal(await h.inspect(), null);
    await assert.rejects(h.renew(a.record.nonce), /released by force|gone/, "renew after release");
  }),
  check("locks: expiry and takeover; the old holder cannot renew", async (ds, { expiryWaitMs }) => {
    const h = ds.lock(MK);
    const old = await h.tryAcquire(req("old", { host: OTHER_HOST, ttlMs: SHORT_TTL_MS }));
    assert.ok(old.acquired);
    assert.ok(!(await h.tryAcquire(req("early"))).acquired, "a live lease was taken over");
    await sleep(expiryWaitMs);
    assert.ok((await h.inspect())?.stale, "an expired lease is not judged stale");
    const next = await h.tryAcquire(req("new"));
    assert.ok(
      next.acquired && next.tookOver?.nonce === old.record.nonce,
      "no takeover of an expired lease",
    );
    await assert.rejects(h.renew(old.record.nonce), /taken over/, "the old holder renewed");
    await h.release(old.record.nonce);
    assert.equal(
      (await h.inspect())?.record.nonce,
      next.record.nonce,
      "the old holder released it",
    );
    await h.release(next.record.nonce);
  }),
  check(
    "locks: concurrent takeovers, exactly one wins",
    async (ds, { contenders: n, expiryWaitMs }) => {
      const old = await ds.lock(MK).tryAcquire(
        req("old", { host: OTHER_HOST, ttlMs: SHORT_TTL_MS }),
      );
      assert.ok(old.acquired);
      await sleep(expiryWaitMs);
      const results = await Promise.all(
        Array.from({ length: n }, (_, i) => ds.lock(MK).tryAcquire(req(`t${i}`))),
      );
      const won = results.filter((r) => r.acquired);
      assert.equal(won.length, 1, `${won.length} of ${n} contenders took the lock over`);
      assert.ok(won[0].acquired && won[0].tookOver?.nonce === old.record.nonce);
    },
  ),
  check("locks: a same-host dead pid is stale", async (ds) => {
    const child = new Deno.Command("true", { stdout: "null", stderr: "null" }).spawn();
    await child.status;
    const h = ds.lock(MK);
    const dead = await h.tryAcquire(req("dead", { pid: child.pid, ttlMs: 60_000 }));
    assert.ok(dead.acquired);
    assert.ok((await h.inspect())?.stale, `a lock of dead pid ${child.pid} on this host is live`);
    const next = await h.tryAcquire(req("alive"));
    assert.ok(next.acquired && next.tookOver?.nonce === dead.record.nonce);
  }),
  check("locks: force release is nonce-checked", async (ds) => {
    const h = ds.lock(MK);
    const a = await h.tryAcquire(req("a"));
    assert.ok(a.acquired);
    assert.equal(await h.forceRelease("not-the-nonce"), false);
    assert.equal(await h.forceRelease(a.record.nonce), true);
    assert.equal(await h.inspect(), null);
    assert.equal(await h.forceRelease(a.record.nonce), false, "a free lock was force-released");
    await assert.rejects(
      h.renew(a.record.nonce),
      /released by force/,
      "renew after a force release",
    );
  }),
  check("locks: a corrupt record is shown as corrupt and not taken at once", async (ds) => {
    const key = "leases/models/conf/m1";
    await ds.provider.createRecord(key, new TextEncoder().encode("{not json"));
    const info = await ds.lock(MK).inspect();
    assert.ok(info !== null && /corrupt/.test(info.record.holder), "a corrupt record is not shown");
    assert.equal(info.stale, false, "a fresh corrupt record was judged stale at once");
    assert.ok(
      !(await ds.lock(MK).tryAcquire(req("b"))).acquired,
      "a fresh corrupt record was taken",
    );
  }),
];
