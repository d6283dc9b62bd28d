import assert from "node:assert/strict";
import { DatastoreError, LeaseLostError } from "../errors.ts";
import type { LockHandle, LockRecord } from "./records.ts";
import { sleep } from "../async.ts";
import { captureLogs, MemoryLockStore, memoryProvider } from "./_memory_provider.ts";
import { describeLock, Lease, lockKeyName } from "./lease.ts";

const TTL = 300;
const M1 = { kind: "model", model: { type: "vpc", id: "m1" } } as const;

async function acquire(
  store: MemoryLockStore,
): Promise<{ handle: LockHandle; record: LockRecord }> {
  const handle = memoryProvider(store, { host: "host-a", pid: 100 }).lock(M1);
  const r = await handle.tryAcquire({
    holder: "dev",
    host: "host-a",
    pid: 100,
    operation: "push",
    ttlMs: TTL,
  });
  assert.ok(r.acquired);
  return { handle, record: r.record };
}

function lostWithin(lease: Lease, ms: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`lease not lost within ${ms}ms`)), ms);
    lease.signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve(lease.signal.reason);
    }, { once: true });
  });
}

Deno.test("lockKeyName and describeLock name keys as messages do", () => {
  assert.equal(lockKeyName({ kind: "global" }), "global");
  assert.equal(
    lockKeyName({ kind: "model", model: { type: "@acme/vpc", id: "m1" } }),
    "@acme/vpc/m1",
  );
  assert.equal(describeLock({ kind: "global" }), "the global lock");
  assert.equal(describeLock("vpc/m1"), "the lock on vpc/m1");
});

Deno.test("a lease renews every ttl/3 and release stops renewal and removes the record", async () => {
  const store = new MemoryLockStore();
  const { handle, record } = await acquire(store);
  const lease = new Lease(handle, record, { ttlMs: TTL });
  await sleep(TTL * 1.5);
  assert.ok(!lease.lost);
  lease.assertHeld();
  const renewals = store.calls.get("replaceRecord") ?? 0;
  assert.ok(renewals >= 2, `expected >= 2 renewals, got ${renewals}`);
  assert.ok(lease.record.renewedAt > record.renewedAt, "the record was renewed");
  assert.equal(store.get("vpc/m1")?.nonce, record.nonce);
  await Promise.all([lease.release(), lease.release()]);
  await lease.release();
  assert.equal(store.get("vpc/m1"), undefined);
  assert.equal(store.calls.get("deleteRecord"), 1, "release is idempotent");
  assert.ok(!lease.lost && !lease.signal.aborted);
  assert.throws(() => lease.assertHeld(), /The lock on vpc\/m1 was already released/);
  await sleep(TTL / 2);
  assert.equal(store.calls.get("replaceRecord"), renewals, "no renewal after release");
});

Deno.test("a refused renewal loses the lease: signal aborts, assertHeld throws, onLost runs", async () => {
  const store = new MemoryLockStore();
  const { handle, record } = await acquire(store);
  const seen: LeaseLostError[] = [];
  const lease = new Lease(handle, record, { ttlMs: TTL, onLost: (e) => seen.push(e) });
  store.put({ ...record, nonce: "someone-else" });
  const reason = await lostWithin(lease, TTL);
  assert.ok(reason instanceof LeaseLostError);
  assert.equal(reason.exitCode, 75);
  assert.match(
    reason.message,
    /^Lost the lock on vpc\/m1: it was taken over by .*; work stopped before committing\. Rerun the command\.$/,
  );
  assert.ok(lease.lost);
  assert.throws(() => lease.assertHeld(), (e) => e === reason);
  assert.deepEqual(seen, [reason]);
  await lease.release();
  assert.equal(
    store.get("vpc/m1")?.nonce,
    "someone-else",
    "release never removes another's record",
  );
});

Deno.test("a transient renewal failure is retried; the lease survives when the store recovers", async () => {
  await using logs = await captureLogs();
  const store = new MemoryLockStore();
  const { handle, record } = await acquire(store);
  const lease = new Lease(handle, record, { ttlMs: TTL });
  store.down = true;
  await sleep(TTL / 3 + 40);
  store.down = false;
  await sleep(TTL);
  assert.ok(!lease.lost);
  assert.ok(logs.messages.some((m) => m.startsWith("Could not renew the lock on vpc/m1")));
  await lease.release();
  assert.equal(store.get("vpc/m1"), undefined);
});

Deno.test("a datastore down or hanging through the ttl loses the lease at its expiry", async () => {
  for (const fault of ["down", "hang"] as const) {
    const store = new MemoryLockStore();
    const { handle, record } = await acquire(store);
    const started = Date.now();
    const lease = new Lease(handle, record, { ttlMs: TTL, startedAtMs: started });
    store[fault] = true;
    const reason = await lostWithin(lease, TTL * 5);
    const after = Date.now() - started;
    assert.ok(after >= TTL - 5 && after < TTL + 500, `${fault}: lost after ${after}ms`);
    assert.ok(reason instanceof LeaseLostError);
    assert.match(reason.message, /^Lost the lock on vpc\/m1: /);
    store[fault] = false;
    await lease.release();
    assert.equal(store.get("vpc/m1"), undefined, `${fault}: released once the store is back`);
  }
});

Deno.test("release never throws when the datastore is down; it logs a warning", async () => {
  await using logs = await captureLogs();
  const store = new MemoryLockStore();
  const { handle, record } = await acquire(store);
  const lease = new Lease(handle, record, { ttlMs: TTL });
  store.down = true;
  await lease.release();
  assert.ok(
    logs.messages.some((m) =>
      m.startsWith("Could not release the lock on vpc/m1 (") && m.endsWith("within 300ms.")
    ),
    logs.messages.join("\n"),
  );
});

Deno.test("confirm() renews now: a force-released lease is caught before the commit, not at the next tick", async () => {
  const store = new MemoryLockStore();
  const { handle, record } = await acquire(store);
  // A long ttl: the scheduled renewal would come only much later.
  const lease = new Lease(handle, record, { ttlMs: 60_000 });
  try {
    await lease.confirm();
    assert.ok(store.get("vpc/m1") !== undefined);
    assert.equal(await handle.forceRelease(record.nonce), true);
    await assert.rejects(lease.confirm(), LeaseLostError);
    assert.equal(lease.lost, true);
  } finally {
    await lease.release();
  }
});

Deno.test("confirm() fails when it cannot renew: an unconfirmed lease never commits", async () => {
  const store = new MemoryLockStore();
  const { handle, record } = await acquire(store);
  const lease = new Lease(handle, record, { ttlMs: 60_000 });
  try {
    // Released by force while the datastore fails: the renewal cannot tell.
    assert.equal(await handle.forceRelease(record.nonce), true);
    store.down = true;
    const err = await lease.confirm().then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof DatastoreError, `confirm() must fail, got ${String(err)}`);
    assert.equal(err.exitCode, 6);
    assert.match(
      err.message,
      /^Could not confirm the lock on vpc\/m1 before committing \(Memory datastore is down .*\); nothing was committed\. Rerun the command\.$/,
    );
    assert.ok(!lease.lost, "a failed confirmation alone does not lose the lease");
    store.down = false;
    await assert.rejects(lease.confirm(), LeaseLostError);
  } finally {
    await lease.release();
  }
});

/** Blocks the event loop for `ms`, as a paused process (SIGSTOP, a suspended VM) would. */
function pause(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // No timer runs while the clock moves on.
  }
}

Deno.test("a holder paused past its ttl has lost its lease, even when nobody replaced its record", async () => {
  const store = new MemoryLockStore();
  const { handle, record } = await acquire(store);
  const lease = new Lease(handle, record, { ttlMs: TTL });
  try {
    pause(TTL * 1.5);
    // The record still carries our nonce (scoped writers only ignore a stale
    // global lock, they do not take it over), so a renewal would succeed;
    // but others may have acted on its expiry meanwhile.
    assert.equal(store.get("vpc/m1")?.nonce, record.nonce);
    await assert.rejects(lease.confirm(), (err: unknown) => {
      assert.ok(err instanceof LeaseLostError);
      assert.match(
        err.message,
        /^Lost the lock on vpc\/m1: it was not renewed within its 300ms ttl;/,
      );
      return true;
    });
    assert.ok(lease.lost && lease.signal.aborted);
  } finally {
    await lease.release();
  }
});

Deno.test("confirm() renews anew after a renewal already in flight, whose answer may predate the caller's read", async () => {
  const store = new MemoryLockStore();
  const { handle, record } = await acquire(store);
  let landed!: () => void;
  const renewalLanded = new Promise<void>((r) => (landed = r));
  let answer!: () => void;
  const answerGate = new Promise<void>((r) => (answer = r));
  let renewals = 0;
  // The first scheduled renewal lands at once; its answer is held back.
  const slow: LockHandle = {
    ...handle,
    renew: async (nonce, opts) => {
      const renewed = await handle.renew(nonce, opts);
      if (++renewals === 1) {
        landed();
        await answerGate;
      }
      return renewed;
    },
  };
  const lease = new Lease(slow, record, { ttlMs: 60_000, renewEveryMs: 10 });
  try {
    await renewalLanded;
    // After it landed: released by force (and maybe taken and committed by another).
    assert.equal(await handle.forceRelease(record.nonce), true);
    const confirmed = lease.confirm();
    answer();
    await assert.rejects(confirmed, LeaseLostError);
  } finally {
    await lease.release();
  }
});

Deno.test("after a pause past the ttl, the overdue renewal does not revive the lease", async () => {
  const store = new MemoryLockStore();
  const { handle, record } = await acquire(store);
  const lease = new Lease(handle, record, { ttlMs: TTL });
  try {
    pause(TTL * 1.5);
    // The overdue renewal tick and expiry timer both run now, in either order.
    await sleep(TTL / 10);
    assert.ok(lease.lost, "lost once the timers ran");
    assert.throws(() => lease.assertHeld(), LeaseLostError);
  } finally {
    await lease.release();
  }
});

Deno.test("a release that fails transiently is tried again; one that keeps failing is left to expire, with a warning", async () => {
  for (const failures of [1, 10]) {
    await using logs = await captureLogs();
    const store = new MemoryLockStore();
    const { handle, record } = await acquire(store);
    let left = failures;
    const flaky: LockHandle = {
      ...handle,
      release: (nonce, opts) => {
        if (left-- > 0) {
          return Promise.reject(new DatastoreError("connection reset", { retryable: true }));
        }
        return handle.release(nonce, opts);
      },
    };
    const lease = new Lease(flaky, record, { ttlMs: 60_000 });
    await lease.release();
    const warned = logs.messages.some((m) => m.startsWith("Could not release the lock on vpc/m1"));
    if (failures === 1) {
      assert.equal(store.get("vpc/m1"), undefined, "released on the second try");
      assert.ok(!warned);
    } else {
      assert.equal(store.get("vpc/m1")?.nonce, record.nonce, "left to expire");
      assert.ok(warned);
      assert.equal(left, failures - 3, "three tries");
    }
  }
});
