import assert from "node:assert/strict";
import { DatastoreError, InterruptedError, LeaseLostError, LockTimeoutError } from "../errors.ts";
import { formatRef, type ModelRef, parseModelRef } from "../model/ref.ts";
import { readCapabilities } from "../provider/capabilities.ts";
import type { Capabilities } from "../provider/contract.ts";
import type { LockRecord } from "./records.ts";
import { sleep } from "../async.ts";
import {
  captureLogs,
  MEMORY_SCOPED_CAPS,
  MemoryLockStore,
  memoryProvider,
} from "./_memory_provider.ts";
import { LockManager, type LockSource, type ModelOutcome } from "./manager.ts";

const TTL = 300;
const TIMEOUT = 1_000;
const GLOBAL_CAPS: Capabilities = { ...MEMORY_SCOPED_CAPS, scopedSync: false };
const m = (s: string): ModelRef => parseModelRef(s);

function manager(
  provider: LockSource,
  opts: { host: string; caps?: Capabilities; lockTimeoutMs?: number; signal?: AbortSignal },
): LockManager {
  return new LockManager({
    provider,
    caps: opts.caps ?? MEMORY_SCOPED_CAPS,
    holder: { holder: "dev", host: opts.host, pid: 100 },
    operation: "push",
    lockTimeoutMs: opts.lockTimeoutMs ?? TIMEOUT,
    ttlMs: TTL,
    signal: opts.signal,
  });
}

/** A manager on its own "process" (host) sharing `store`. */
function proc(
  store: MemoryLockStore,
  host: string,
  opts: { caps?: Capabilities; lockTimeoutMs?: number; signal?: AbortSignal } = {},
) {
  return manager(memoryProvider(store, { host, pid: 100 }), { host, ...opts });
}

/** A record written by another process, live for a minute unless `staleSince` is given. */
function foreign(
  key: string,
  opts: { staleSinceMs?: number; host?: string; pid?: number } = {},
): LockRecord {
  const at = new Date(Date.now() - (opts.staleSinceMs ?? 0)).toISOString();
  return {
    key,
    holder: "ci",
    host: opts.host ?? "build-3",
    pid: opts.pid ?? 4242,
    operation: "push",
    acquiredAt: at,
    renewedAt: at,
    ttlMs: opts.staleSinceMs === undefined ? 60_000 : 30_000,
    nonce: crypto.randomUUID(),
  };
}

function values<T>(outcomes: ModelOutcome<T>[]): T[] {
  return outcomes.map((o) => {
    if (!o.ok) throw o.error;
    return o.value;
  });
}

Deno.test("path is scoped iff scopedSync; a provider with missing, throwing or null capabilities runs global", async () => {
  const store = new MemoryLockStore();
  assert.equal(proc(store, "a").path, "scoped");
  assert.equal(proc(store, "a", { caps: GLOBAL_CAPS }).path, "global");
  for (const caps of ["missing", "throws", "null"] as const) {
    const provider = memoryProvider(store, { host: "a", pid: 100, caps });
    const reading = readCapabilities(provider, []);
    assert.equal(reading.warnings.length, 1, caps);
    const mgr = manager(provider, { host: "a", caps: reading.caps });
    assert.equal(mgr.path, "global", caps);
    const seen: string[] = [];
    const out = await mgr.run([m("vpc/m1")], (model) => {
      seen.push(store.get("global")?.holder ?? "none");
      return Promise.resolve(formatRef(model));
    }, { jobs: 2 });
    assert.deepEqual(values(out), ["vpc/m1"]);
    assert.deepEqual(seen, ["dev"], "work ran under the global lock");
    assert.equal(store.lockCount, 0);
  }
});

Deno.test("duplicates are dropped and outcomes come back in sorted order", async () => {
  const store = new MemoryLockStore();
  for (const caps of [MEMORY_SCOPED_CAPS, GLOBAL_CAPS]) {
    const order: string[] = [];
    const out = await proc(store, "a", { caps }).run(
      [m("vpc/m2"), m("app/x"), m("vpc/m2"), m("vpc/m1")],
      (model) => {
        order.push(formatRef(model));
        return Promise.resolve(formatRef(model));
      },
      { jobs: 1 },
    );
    assert.deepEqual(out.map((o) => formatRef(o.model)), ["app/x", "vpc/m1", "vpc/m2"]);
    assert.deepEqual(values(out), ["app/x", "vpc/m1", "vpc/m2"]);
    assert.deepEqual(order, ["app/x", "vpc/m1", "vpc/m2"]);
  }
});

Deno.test("scoped path: different models run concurrently, within one run and across two managers", async () => {
  const store = new MemoryLockStore();
  const started = new Set<string>();
  // Each work waits until every other model has started: only true concurrency passes.
  const barrier = (all: string[]) => async (model: ModelRef) => {
    started.add(formatRef(model));
    const until = Date.now() + TIMEOUT;
    while (!all.every((x) => started.has(x))) {
      if (Date.now() > until) throw new Error(`${formatRef(model)} ran alone`);
      await sleep(5);
    }
    assert.equal(store.get(formatRef(model))?.holder, "dev");
    return formatRef(model);
  };
  const one = await proc(store, "a").run(
    [m("vpc/m1"), m("vpc/m2")],
    barrier(["vpc/m1", "vpc/m2"]),
    {
      jobs: 2,
    },
  );
  assert.deepEqual(values(one), ["vpc/m1", "vpc/m2"]);
  started.clear();
  const work = barrier(["vpc/m3", "vpc/m4"]);
  const [a, b] = await Promise.all([
    proc(store, "a").run([m("vpc/m3")], work, { jobs: 1 }),
    proc(store, "b").run([m("vpc/m4")], work, { jobs: 1 }),
  ]);
  assert.deepEqual([...values(a), ...values(b)], ["vpc/m3", "vpc/m4"]);
  assert.equal(store.lockCount, 0);
});

Deno.test("scoped path: models locked together share their check of the global lock", async () => {
  const store = new MemoryLockStore();
  const models = Array.from({ length: 8 }, (_, i) => m(`vpc/m${i}`));
  const out = await proc(store, "a").run(models, (model) => Promise.resolve(formatRef(model)), {
    jobs: 8,
  });
  assert.deepEqual(values(out), models.map(formatRef));
  assert.equal(store.calls.get("createRecord"), 8, "one create per model lock");
  // Only the global lock is read: the first worker's check, and one shared by the rest
  // (it is sent after their model locks were taken). Two per model before.
  const reads = store.calls.get("getRecord") ?? 0;
  assert.ok(reads >= 1 && reads <= 2, `${reads} reads of the global lock for 8 models`);
  assert.equal(store.lockCount, 0);
});

Deno.test("scoped path: the same model serialises across two managers; the waiter says who holds it", async () => {
  await using logs = await captureLogs();
  const store = new MemoryLockStore();
  const spans: Array<[number, number]> = [];
  const work = async () => {
    const start = Date.now();
    await sleep(150);
    spans.push([start, Date.now()]);
  };
  const first = proc(store, "host-a").run([m("vpc/m1")], work, { jobs: 1 });
  await sleep(20);
  const second = proc(store, "host-b").run([m("vpc/m1")], work, { jobs: 1 });
  values(await first);
  values(await second);
  assert.equal(spans.length, 2);
  assert.ok(spans[1][0] >= spans[0][1], "the second ran after the first released");
  const waits = logs.messages.filter((x) => x.startsWith("Waiting for the lock on vpc/m1"));
  assert.equal(waits.length, 1, "the first wait is logged once");
  assert.match(
    waits[0],
    /^Waiting for the lock on vpc\/m1: held by dev@host-a pid 100 \(push, since \S+Z\)\.$/,
  );
});

Deno.test("global path: takes the global lock, drains live model locks first, ignores stale ones", async () => {
  await using logs = await captureLogs();
  const store = new MemoryLockStore();
  const live = foreign("vpc/m9");
  const stale = foreign("vpc/m8", { staleSinceMs: 10 * 60_000 });
  store.put(live);
  store.put(stale);
  let removedAt = 0;
  const remover = sleep(250).then(() => {
    store.remove("vpc/m9");
    removedAt = Date.now();
  });
  let startedAt = 0;
  const out = await proc(store, "host-a", { caps: GLOBAL_CAPS }).run(
    [m("vpc/m1"), m("vpc/m2")],
    (model) => {
      startedAt ||= Date.now();
      assert.equal(store.get("global")?.holder, "dev");
      assert.equal(store.get(formatRef(model)), undefined, "no model lock on the global path");
      return Promise.resolve(1);
    },
    { jobs: 2 },
  );
  await remover;
  assert.deepEqual(values(out), [1, 1]);
  assert.ok(removedAt > 0 && startedAt >= removedAt, "work waited for the drain");
  assert.equal(store.get("global"), undefined, "the global lock was released");
  assert.equal(store.get("vpc/m8")?.nonce, stale.nonce, "the stale model lock was left alone");
  assert.ok(
    logs.messages.includes(
      `Waiting for the lock on vpc/m9: held by ci@build-3 pid 4242 (push, since ${live.acquiredAt}).`,
    ),
    logs.messages.join("\n"),
  );
});

Deno.test("scoped path: a worker that sees the global lock appear after taking its model lock releases it, backs off and retries", async () => {
  await using logs = await captureLogs();
  const store = new MemoryLockStore();
  const inner = memoryProvider(store, { host: "host-a", pid: 100 });
  let planted: Promise<void> | undefined;
  let modelLockDuringGlobal: LockRecord | undefined | null = null;
  let removedAt = 0;
  const provider: LockSource = {
    listLocks: (o) => inner.listLocks(o),
    lock: (key) => {
      const handle = inner.lock(key);
      if (key.kind === "global") return handle;
      return {
        key,
        tryAcquire: async (req, o) => {
          const r = await handle.tryAcquire(req, o);
          if (r.acquired && planted === undefined) {
            store.put(foreign("global")); // a global holder appears right after our acquire
            planted = sleep(200).then(() => {
              modelLockDuringGlobal = store.get("vpc/m1");
              store.remove("global");
              removedAt = Date.now();
            });
          }
          return r;
        },
        renew: (n, o) => handle.renew(n, o),
        release: (n, o) => handle.release(n, o),
        inspect: (o) => handle.inspect(o),
        forceRelease: (n, o) => handle.forceRelease(n, o),
      };
    },
  };
  let workAt = 0;
  const out = await manager(provider, { host: "host-a" }).run([m("vpc/m1")], () => {
    workAt = Date.now();
    assert.equal(store.get("vpc/m1")?.holder, "dev");
    return Promise.resolve("done");
  }, { jobs: 1 });
  await planted;
  assert.deepEqual(values(out), ["done"]);
  assert.equal(
    modelLockDuringGlobal,
    undefined,
    "the model lock was released while global was held",
  );
  assert.ok(workAt >= removedAt, "work ran only after the global lock went away");
  assert.ok(
    logs.messages.some((x) => x.startsWith("Waiting for the global lock: held by ci@build-3")),
  );
  assert.equal(store.lockCount, 0);
});

Deno.test("lock timeout: the blocked model gets a LockTimeoutError naming the holder, the others succeed", async () => {
  const store = new MemoryLockStore();
  const held = foreign("vpc/m1");
  store.put(held);
  const started = Date.now();
  const out = await proc(store, "host-a", { lockTimeoutMs: 400 }).run(
    [m("vpc/m1"), m("vpc/m2")],
    () => Promise.resolve("ok"),
    { jobs: 2 },
  );
  const took = Date.now() - started;
  assert.ok(took >= 400 && took < 2_000, `timed out after ${took}ms`);
  const [m1, m2] = out;
  assert.ok(m2.ok && m2.value === "ok");
  assert.ok(!m1.ok && m1.error instanceof LockTimeoutError);
  assert.equal(m1.error.exitCode, 75);
  assert.equal(
    m1.error.message,
    `Timed out after 400ms waiting for the lock on vpc/m1, held by ci@build-3 pid 4242 ` +
      `(push, since ${held.acquiredAt}). Retry later, raise --lock-timeout, or if that process ` +
      `is gone run "modelsync lock release --force vpc/m1".`,
  );
  assert.equal(store.get("vpc/m1")?.nonce, held.nonce);
});

Deno.test("a datastore that keeps failing ends the wait after a few attempts, not at the lock timeout", async () => {
  const store = new MemoryLockStore();
  store.down = true;
  const out = await proc(store, "host-a", { lockTimeoutMs: 3_600_000 }).run(
    [m("vpc/m1")],
    () => Promise.resolve("ok"),
    { jobs: 1 },
  );
  const [m1] = out;
  assert.ok(!m1.ok && m1.error instanceof DatastoreError, String(!m1.ok && m1.error));
  assert.match(m1.error.message, /Memory datastore is down/);
  const calls = [...store.calls.values()].reduce((a, b) => a + b, 0);
  assert.ok(calls >= 4 && calls <= 8, `gave up after ${calls} calls`);
});

Deno.test("a datastore that recovers within a few attempts does not fail the wait", async () => {
  const store = new MemoryLockStore();
  // Down for the first two calls (fewer than the faults that end a wait), then up.
  const total = () => [...store.calls.values()].reduce((a, b) => a + b, 0);
  Object.defineProperty(store, "down", { get: () => total() <= 2 });
  const out = await proc(store, "host-a").run([m("vpc/m1")], () => Promise.resolve("ok"), {
    jobs: 1,
  });
  assert.ok(out[0].ok && out[0].value === "ok");
});

Deno.test("lock timeout on the global lock: every model gets it, with the --global remedy", async () => {
  const store = new MemoryLockStore();
  store.put(foreign("global"));
  for (const caps of [GLOBAL_CAPS, MEMORY_SCOPED_CAPS]) {
    const out = await proc(store, "host-a", { caps, lockTimeoutMs: 300 }).run(
      [m("vpc/m1"), m("vpc/m2")],
      () => Promise.reject(new Error("must not run")),
      { jobs: 2 },
    );
    for (const o of out) {
      assert.ok(!o.ok && o.error instanceof LockTimeoutError);
      assert.match(
        o.error.message,
        /^Timed out after 300ms waiting for the global lock, held by ci@build-3 pid 4242 .* run "modelsync lock release --force --global"\.$/,
      );
    }
  }
});

Deno.test("a stale lock is taken over with a warning naming the old holder and why", async () => {
  await using logs = await captureLogs();
  const store = new MemoryLockStore();
  const expired = foreign("vpc/m1", { staleSinceMs: 10 * 60_000 });
  const child = new Deno.Command("true").spawn();
  await child.status;
  const orphan = foreign("vpc/m2", { host: "host-a", pid: child.pid });
  store.put(expired);
  store.put(orphan);
  const out = await proc(store, "host-a").run([m("vpc/m1"), m("vpc/m2")], (model) => {
    assert.equal(store.get(formatRef(model))?.holder, "dev");
    return Promise.resolve(true);
  }, { jobs: 1 });
  assert.deepEqual(values(out), [true, true]);
  assert.ok(
    logs.messages.includes(
      `Took over the stale lock on vpc/m1 from ci@build-3 pid 4242 (push, since ${expired.acquiredAt}): expired 570s ago.`,
    ),
    logs.messages.join("\n"),
  );
  assert.ok(
    logs.messages.includes(
      `Took over the stale lock on vpc/m2 from ci@host-a pid ${child.pid} (push, since ${orphan.acquiredAt}): pid ${child.pid} on this host (host-a) is gone.`,
    ),
    logs.messages.join("\n"),
  );
  assert.equal(store.lockCount, 0);
});

Deno.test("a lost lease aborts ctx.signal and assertHeld throws before the commit", async () => {
  const store = new MemoryLockStore();
  const out = await proc(store, "host-a").run([m("vpc/m1")], async (_model, { lease, signal }) => {
    store.put({ ...lease.record, nonce: "stolen" }); // someone took it over
    await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
    assert.ok(lease.lost);
    lease.assertHeld(); // throws: no commit after this
    return "committed";
  }, { jobs: 1 });
  const [o] = out;
  assert.ok(!o.ok && o.error instanceof LeaseLostError);
  assert.equal(o.error.exitCode, 75);
  assert.match(
    o.error.message,
    /^Lost the lock on vpc\/m1: it was taken over by .*; work stopped before committing\. Rerun the command\.$/,
  );
  assert.equal(store.get("vpc/m1")?.nonce, "stolen", "the new holder's record is untouched");
});

Deno.test("releaseAll releases every held lock and stops the remaining models", async () => {
  const store = new MemoryLockStore();
  for (const caps of [MEMORY_SCOPED_CAPS, GLOBAL_CAPS]) {
    store.records.clear();
    const mgr = proc(store, "host-a", { caps });
    let held = -1;
    const out = await mgr.run([m("vpc/m1"), m("vpc/m2")], async (_model, { signal }) => {
      held = store.lockCount;
      await mgr.releaseAll();
      assert.equal(store.lockCount, 0, "released while the work still runs");
      assert.ok(signal.aborted, "the work is told to stop");
      throw signal.reason;
    }, { jobs: 1 });
    assert.equal(held, 1);
    for (const o of out) assert.ok(!o.ok && o.error instanceof InterruptedError);
    assert.equal(store.lockCount, 0);
  }
});

Deno.test("an aborted run signal ends a wait; waiting models get an interrupted outcome", async () => {
  const store = new MemoryLockStore();
  store.put(foreign("vpc/m1"));
  const ctl = new AbortController();
  const reason = new InterruptedError("Interrupted by SIGINT; rerun the command.");
  const timer = setTimeout(() => ctl.abort(reason), 150);
  const started = Date.now();
  const out = await proc(store, "host-a", { signal: ctl.signal }).run(
    [m("vpc/m1"), m("vpc/m2")],
    () => Promise.resolve("ran"),
    { jobs: 1 },
  );
  clearTimeout(timer);
  assert.ok(Date.now() - started < 1_000, "the wait ended at the abort");
  for (const o of out) assert.ok(!o.ok && o.error === reason);
  assert.equal(store.lockCount, 1, "only the foreign record remains");
  const none = await proc(store, "host-a", { signal: AbortSignal.abort() }).run(
    [m("vpc/m3")],
    () => Promise.resolve("ran"),
    { jobs: 1 },
  );
  assert.ok(!none[0].ok && none[0].error instanceof Error);
});

Deno.test("a live record of this very process that no lease holds (a timed-out acquire) is reclaimed at once", async () => {
  const store = new MemoryLockStore();
  // As if an earlier tryAcquire of this process created the record but its
  // answer was lost to the call deadline: same host and pid, unknown nonce.
  store.put(foreign("vpc/m1", { host: "a", pid: 100 }));
  const mgr = proc(store, "a", { lockTimeoutMs: 200 });
  const out = await mgr.run(
    [m("vpc/m1")],
    (_model, ctx) => Promise.resolve(ctx.lease.record.nonce),
    { jobs: 1 },
  );
  const [nonce] = values(out);
  assert.equal(store.get("vpc/m1"), undefined, "released after the work");
  assert.ok(typeof nonce === "string" && nonce.length > 0);
  // A record of another process on the same host with a live pid is not touched.
  store.put(foreign("vpc/m2", { host: "a", pid: Deno.pid === 100 ? 101 : Deno.pid }));
  const blocked = await proc(store, "a", { lockTimeoutMs: 200 }).run(
    [m("vpc/m2")],
    () => Promise.resolve(1),
    {
      jobs: 1,
    },
  );
  assert.equal(blocked[0].ok, false);
  assert.ok(store.get("vpc/m2") !== undefined);
});

Deno.test("runExclusive takes the global lock even on a scoped datastore, after the drain, and releases it; a held global lock times out", async () => {
  const store = new MemoryLockStore();
  store.put(foreign("vpc/m9"));
  let removedAt = 0;
  const remover = sleep(200).then(() => {
    store.remove("vpc/m9");
    removedAt = Date.now();
  });
  const mgr = proc(store, "host-a", { caps: MEMORY_SCOPED_CAPS });
  assert.equal(mgr.path, "scoped");
  const got = await mgr.runExclusive(({ lease }) => {
    assert.ok(removedAt > 0, "ran only after the model lock went away");
    assert.equal(store.get("global")?.holder, "dev");
    lease.assertHeld();
    return Promise.resolve("done");
  });
  await remover;
  assert.equal(got, "done");
  assert.equal(store.get("global"), undefined, "the global lock was released");

  await assert.rejects(
    proc(store, "host-a").runExclusive(() => Promise.reject(new Error("boom"))),
    /boom/,
  );
  assert.equal(store.get("global"), undefined, "released after a failure too");
  store.put(foreign("global"));
  await assert.rejects(
    proc(store, "host-a", { lockTimeoutMs: 200 }).runExclusive(() => Promise.resolve(1)),
    (err) => err instanceof LockTimeoutError && /global lock/.test(err.message),
  );
});
