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
  reportByModel,
  snapshot,
  writeModelFiles,
} from "./_helpers.ts";
import { S3Sandbox, s3TestOptions } from "./_s3.ts";
import type { S3Proxy } from "./_s3_proxy.ts";

/** Short deadlines: each call, each lock wait, the whole run as a backstop. */
const DEADLINES = ["--call-timeout", "1s", "--lock-timeout", "2s", "--timeout", "60s"];


function clearFaults(proxy: S3Proxy): void {
  proxy.failRequest = undefined;
  proxy.resetRequest = undefined;
  proxy.stallRequest = undefined;
  proxy.stallBody = undefined;
  proxy.onRequest = undefined;
  proxy.latencyMs = 0;
}

/** The most times one request (method, path and query) was sent. */
function mostAttempts(proxy: S3Proxy): number {
  const n = new Map<string, number>();
  for (const r of proxy.requests) {
    const k = `${r.method} ${r.path}?${r.query}`;
    n.set(k, (n.get(k) ?? 0) + 1);
  }
  return Math.max(0, ...n.values());
}

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
      const res = await a.run(["push", "--json", ...DEADLINES]);
      const sent = proxy.count;
      const most = mostAttempts(proxy);
      clearFaults(proxy);
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
