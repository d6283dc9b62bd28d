/**
 * Network faults between modelsync and an S3 datastore, injected by the
 * proxy of tests/_s3_proxy.ts (issue 13, point 4): 503 SlowDown, 500, reset
 * connections, requests never answered, latency past the call deadline,
 * bodies that stall part-way, a server that stops mid-download. Each fault,
 * when it persists, ends the command with exit 6 after a bounded number of
 * requests; when it is transient, the command retries and completes; either
 * way nothing is lost: the working copy is untouched by a failed run, the
 * datastore stays consistent, and a run after the fault clears converges.
 *
 * (tests/s3_faults_test.ts covers refused credentials, a missing bucket, the
 * server going down mid-push and a lost commit answer.)
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  describe,
  expectCode,
  expectJson,
  FAULT_DEADLINES,
  listFiles,
  reportByModel,
  snapshot,
  writeModelFiles,
} from "./_helpers.ts";
import { S3Sandbox, s3TestOptions } from "./_s3.ts";
import type { ProxiedRequest } from "./_s3_proxy.ts";

const isBlob = (r: ProxiedRequest) => r.path.includes("/blobs/");
/** A conditional write of a record (create, replace, delete): never retried by the guard. */
const isRecordWrite = (r: ProxiedRequest) =>
  (r.method === "PUT" || r.method === "DELETE") && !isBlob(r);

Deno.test({
  name:
    "S3 faults that persist (503 SlowDown, 500, resets, no answer, latency past the deadline): exit 6 after bounded retries, nothing lost",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("fp-persist", { proxy: true });
    const proxy = s3.proxy!;
    const a = await s3.sb.repo("a");
    await a.noPacks();
    await writeModelFiles(a, "vpc/m1", { count: 4, size: 30_000, seed: 3 });
    const before = await snapshot(a.path("models"));
    const faults: [string, () => void][] = [
      ["503 SlowDown", () => (proxy.failRequest = () => 503)],
      ["500 InternalError", () => (proxy.failRequest = () => 500)],
      ["connection reset", () => (proxy.resetRequest = () => true)],
      ["no answer", () => (proxy.stallRequest = () => true)],
      ["latency 1.5 s, past the 1 s call deadline", () => (proxy.latencyMs = 1_500)],
    ];
    for (const [name, inject] of faults) {
      proxy.reset();
      inject();
      const res = await a.run(["push", "--json", ...FAULT_DEADLINES]);
      const sent = proxy.count;
      const most = proxy.mostAttempts();
      proxy.clearFaults();
      expectCode(res, 6, `push under ${name}`);
      const errors = res.stderr.split("\n").filter((l) => l.startsWith("modelsync: error: "));
      assert.ok(errors.length >= 1, `${name}\n${describe(res)}`);
      for (const line of errors) assert.ok(line.includes(s3.bucket), `${name}\n${describe(res)}`);
      assert.match(errors.join("\n"), /retries such faults|did not answer/);
      // Retried, but boundedly: the guard's 4 attempts per call, a few calls.
      assert.ok(most >= 2, `${name}: retried (${most} attempts)\n${proxy.summary()}`);
      assert.ok(most <= 4, `${name}: at most 4 attempts of one request, saw ${most}`);
      assert.ok(
        sent <= 24,
        `${name}: a bounded number of requests, saw ${sent}\n${proxy.summary()}`,
      );
      assert.deepEqual(await snapshot(a.path("models")), before, `${name}: local data untouched`);
      assert.deepEqual(await s3.store.keys("heads/"), [], `${name}: nothing committed`);
    }
    // The faults cleared: a rerun completes, and everything arrives.
    const rerun = reportByModel(
      expectJson(expectCode(await a.run(["push", "--json"]), 0, "rerun"), "modelsync.push/1"),
    );
    assert.equal(rerun.get("vpc/m1")?.status, "pushed");
    assert.deepEqual(await s3.store.integrityProblems(), []);
    assert.deepEqual(await s3.store.keys("leases/"), [], "no lock left behind");
    const b = await s3.sb.repo("b");
    expectCode(await b.run(["pull"]), 0, "fresh pull");
    assert.deepEqual(await snapshot(b.path("models")), before, "every byte arrives");
  },
});

Deno.test({
  name:
    "S3 faults that pass (503 once per request, a reset once per blob GET, a body stalled once): push and pull retry and complete",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("fp-transient", { proxy: true });
    const proxy = s3.proxy!;
    const a = await s3.sb.repo("a");
    await a.noPacks();
    await writeModelFiles(a, "vpc/m1", { count: 5, size: 40_000, seed: 4 });
    await a.write("models/vpc/m2/b.txt", "second model\n");
    const before = await snapshot(a.path("models"));

    // Every request the guard may repeat fails with 503 SlowDown the first time it is sent.
    // (Conditional writes of records are never repeated: a lost answer may hide a success.)
    const seen = new Set<string>();
    proxy.failRequest = (r) => {
      const k = `${r.method} ${r.path}?${r.query}`;
      if (seen.has(k) || isRecordWrite(r)) return undefined;
      seen.add(k);
      return 503;
    };
    const push = expectCode(
      await a.run(["push", "--json", ...FAULT_DEADLINES]),
      0,
      "push under 503s",
    );
    const rows = reportByModel(expectJson(push, "modelsync.push/1"));
    assert.deepEqual([rows.get("vpc/m1")?.status, rows.get("vpc/m2")?.status], [
      "pushed",
      "pushed",
    ]);
    assert.ok(proxy.requests.filter((r) => r.status === 503).length >= 6, proxy.summary());
    proxy.clearFaults();
    assert.deepEqual(await s3.store.integrityProblems(), []);

    // A fresh pull: the first GET of each blob is reset, the second stalls after 1000 bytes.
    const b = await s3.sb.repo("b");
    const gets = new Map<string, number>();
    const attempt = (r: ProxiedRequest) => {
      const n = (gets.get(r.path) ?? 0) + 1;
      gets.set(r.path, n);
      return n;
    };
    proxy.resetRequest = (r) => r.method === "GET" && isBlob(r) && attempt(r) === 1;
    proxy.stallBody = (r, status) =>
      r.method === "GET" && isBlob(r) && status === 200 && gets.get(r.path) === 2
        ? 1_000
        : undefined;
    proxy.reset();
    const pull = await b.run(["pull", "--json", ...FAULT_DEADLINES]);
    proxy.clearFaults();
    expectCode(pull, 0, `pull through resets and stalls\n${proxy.summary()}`);
    assert.ok(
      [...gets.values()].some((n) => n >= 3),
      `a blob was fetched a third time\n${proxy.summary()}`,
    );
    assert.deepEqual(await snapshot(b.path("models")), before, "every byte arrives");
    assert.deepEqual(
      await listFiles(b.path(".modelsync/tmp")).catch(() => []),
      [],
      "no temporaries",
    );
  },
});

Deno.test({
  name:
    "S3: a body that always stalls, and the server stopping mid-download: pull exits 6, nothing half-written, a rerun completes",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("fp-stall", { proxy: true });
    const proxy = s3.proxy!;
    const a = await s3.sb.repo("a");
    await a.noPacks();
    const files = await writeModelFiles(a, "vpc/m1", { count: 4, size: 50_000, seed: 6 });
    expectCode(await a.run(["push"]), 0, "push");
    const want = await snapshot(a.path("models"));

    const b = await s3.sb.repo("b");
    // Every blob body stalls after 2000 bytes: the idle deadline fires on each attempt.
    proxy.stallBody = (r, status) => (isBlob(r) && status === 200 ? 2_000 : undefined);
    proxy.reset();
    const stalled = await b.run(["pull", "--json", ...FAULT_DEADLINES]);
    const most = proxy.mostAttempts();
    proxy.clearFaults();
    expectCode(stalled, 6, "pull whose downloads always stall");
    assert.ok(
      most >= 2 && most <= 4,
      `each blob fetched 2-4 times, saw ${most}\n${proxy.summary()}`,
    );
    assert.deepEqual(await listFiles(b.path("models")).catch(() => []), [], "nothing landed");

    // The server stops while the second blob is being sent.
    let blobGets = 0;
    proxy.onRequest = (r) => {
      if (r.method === "GET" && isBlob(r) && ++blobGets === 2) void proxy.pause();
    };
    const cut = await b.run(["pull", "--json", ...FAULT_DEADLINES]);
    proxy.onRequest = undefined;
    assert.equal(proxy.paused, true, proxy.summary());
    expectCode(cut, 6, "pull while the server stops");
    for (const rel of await listFiles(b.path("models")).catch(() => [] as string[])) {
      // A file that landed is whole: downloads land by rename once verified.
      const name = rel.split("/").pop()!;
      assert.deepEqual(await b.readBytes(`models/${rel}`), files.get(name), `${rel} is whole`);
    }
    await proxy.resume();
    expectCode(await b.run(["pull"]), 0, "rerun once the server is back");
    assert.deepEqual(await snapshot(b.path("models")), want, "every byte arrives");
    assert.deepEqual(await s3.store.keys("leases/"), [], "no lock left behind");
  },
});
