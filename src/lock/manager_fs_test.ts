/**
 * A few lock manager checks against the real filesystem provider (the rest
 * run against the in-memory provider in manager_test.ts).
 */
import assert from "node:assert/strict";
import { LeaseLostError, LockTimeoutError } from "../errors.ts";
import { formatRef, type ModelRef, parseModelRef } from "../model/ref.ts";
import { readCapabilities } from "../provider/capabilities.ts";
import { Datastore } from "../provider/datastore.ts";
import type { LockRecord } from "./records.ts";
import { filesystemProvider } from "../providers/filesystem/mod.ts";
import { sleep } from "../async.ts";
import { captureLogs } from "./_memory_provider.ts";
import { LockManager, type ModelOutcome } from "./manager.ts";

const TTL = 300;
const m = (s: string): ModelRef => parseModelRef(s);

/** A fresh initialised datastore directory, removed on dispose. */
async function datastore(): Promise<{ dir: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "modelsync-lock-" });
  return { dir, [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
}

/** A provider for one "process" (its own host name) on the datastore `dir`. */
async function open(dir: string, host: string): Promise<Datastore> {
  const p = await filesystemProvider.create({ path: dir }, {
    callTimeoutMs: 5_000,
    host,
    pid: Deno.pid,
    baseDir: "/",
  });
  const ds = new Datastore(p, { host, pid: Deno.pid, skewMarginMs: 0 });
  await ds.init();
  await ds.open();
  return ds;
}

function manager(provider: Datastore, opts: { host: string; lockTimeoutMs?: number }): LockManager {
  return new LockManager({
    provider,
    caps: readCapabilities(provider, []).caps,
    holder: { holder: "dev", host: opts.host, pid: Deno.pid },
    operation: "push",
    lockTimeoutMs: opts.lockTimeoutMs ?? 2_000,
    ttlMs: TTL,
  });
}

/** Another process's lock taken directly through a handle (no renewal). */
async function hold(provider: Datastore, model: string, ttlMs: number): Promise<LockRecord> {
  const r = await provider.lock({ kind: "model", model: m(model) }).tryAcquire({
    holder: "ci",
    host: "build-3",
    pid: Deno.pid,
    operation: "push",
    ttlMs,
  });
  assert.ok(r.acquired);
  return r.record;
}

function values<T>(outcomes: ModelOutcome<T>[]): T[] {
  return outcomes.map((o) => {
    if (!o.ok) throw o.error;
    return o.value;
  });
}

Deno.test("fs: scoped path; the same model serialises across two managers, others run concurrently", async () => {
  await using store = await datastore();
  const a = await open(store.dir, "host-a");
  const b = await open(store.dir, "host-b");
  assert.equal(manager(a, { host: "host-a" }).path, "scoped");
  const spans = new Map<string, Array<[number, number]>>();
  const work = async (model: ModelRef) => {
    const start = Date.now();
    await sleep(150);
    const list = spans.get(formatRef(model)) ?? [];
    list.push([start, Date.now()]);
    spans.set(formatRef(model), list);
  };
  const [ra, rb, rc] = await Promise.all([
    manager(a, { host: "host-a" }).run([m("vpc/m1")], work, { jobs: 1 }),
    manager(b, { host: "host-b" }).run([m("vpc/m1")], work, { jobs: 1 }),
    manager(b, { host: "host-b" }).run([m("vpc/m2")], work, { jobs: 1 }),
  ]);
  values([...ra, ...rb, ...rc]);
  const [x, y] = spans.get("vpc/m1")!.sort((p, q) => p[0] - q[0]);
  assert.ok(y[0] >= x[1], "vpc/m1 ran once at a time");
  const [z] = spans.get("vpc/m2")!;
  assert.ok(z[0] < x[1], "vpc/m2 did not wait for vpc/m1");
  assert.deepEqual(await a.listLocks(), []);
});

Deno.test("fs: global path drains a live model lock, ignores a stale one, and releases", async () => {
  await using logs = await captureLogs();
  await using store = await datastore();
  const a = await open(store.dir, "host-a");
  const other = await open(store.dir, "build-3");
  await hold(other, "vpc/m8", 20);
  const live = await hold(other, "vpc/m9", 60_000);
  await sleep(60);
  let releasedAt = 0;
  const releaser = sleep(250).then(async () => {
    await other.lock({ kind: "model", model: m("vpc/m9") }).release(live.nonce);
    releasedAt = Date.now();
  });
  const caps = { ...readCapabilities(a, []).caps, scopedSync: false };
  const mgr = new LockManager({
    provider: a,
    caps,
    holder: { holder: "dev", host: "host-a", pid: Deno.pid },
    operation: "gc",
    lockTimeoutMs: 2_000,
    ttlMs: TTL,
  });
  let startedAt = 0;
  const out = await mgr.run([m("vpc/m1")], async () => {
    startedAt = Date.now();
    const g = await a.lock({ kind: "global" }).inspect();
    return g?.record.operation;
  }, { jobs: 1 });
  await releaser;
  assert.deepEqual(values(out), ["gc"]);
  assert.ok(startedAt >= releasedAt, "work waited for vpc/m9 to drain");
  assert.ok(
    logs.messages.some((x) => x.startsWith("Waiting for the lock on vpc/m9: held by ci@build-3")),
  );
  const left = (await a.listLocks()).map((l) => [l.record.key, l.stale]);
  assert.deepEqual(left, [["vpc/m8", true]]);
});

Deno.test("fs: a stale lock is taken over with a warning; a live one times out naming its holder", async () => {
  await using logs = await captureLogs();
  await using store = await datastore();
  const a = await open(store.dir, "host-a");
  const other = await open(store.dir, "build-3");
  const old = await hold(other, "vpc/m1", 20);
  const live = await hold(other, "vpc/m2", 60_000);
  await sleep(60);
  const out = await manager(a, { host: "host-a", lockTimeoutMs: 300 }).run(
    [m("vpc/m1"), m("vpc/m2")],
    () => Promise.resolve("ok"),
    { jobs: 2 },
  );
  assert.ok(out[0].ok && out[0].value === "ok");
  assert.ok(!out[1].ok && out[1].error instanceof LockTimeoutError);
  assert.equal(
    out[1].error.message,
    `Timed out after 300ms waiting for the lock on vpc/m2, held by ci@build-3 pid ${Deno.pid} ` +
      `(push, since ${live.acquiredAt}). Retry later, raise --lock-timeout, or if that process ` +
      `is gone run "modelsync lock release --force vpc/m2".`,
  );
  const prefix = `Took over the stale lock on vpc/m1 from ci@build-3 pid ${Deno.pid} ` +
    `(push, since ${old.acquiredAt}): `;
  assert.ok(logs.messages.some((x) => x.startsWith(prefix)), logs.messages.join("\n"));
  const left = (await a.listLocks()).map((l) => l.record.key);
  assert.deepEqual(left, ["vpc/m2"]);
});

Deno.test("fs: a force-released lease is lost: ctx.signal aborts and assertHeld throws", async () => {
  await using store = await datastore();
  const a = await open(store.dir, "host-a");
  const operator = await open(store.dir, "ops");
  const out = await manager(a, { host: "host-a" }).run([m("vpc/m1")], async (model, ctx) => {
    const handle = operator.lock({ kind: "model", model });
    const info = await handle.inspect();
    assert.ok(info !== null && await handle.forceRelease(info.record.nonce));
    await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
    ctx.lease.assertHeld();
    return "committed";
  }, { jobs: 1 });
  assert.ok(!out[0].ok && out[0].error instanceof LeaseLostError);
  assert.deepEqual(await a.listLocks(), []);
});
