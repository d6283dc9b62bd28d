/**
 * Network faults between modelsync and an Azure datastore (Azurite), injected
 * by the proxy of tests/_s3_proxy.ts, which Azure's plain HTTP goes through
 * as S3's does (issue 13, point 4): 503 (Azure's ServerBusy), 500, reset
 * connections, requests never answered, latency past the call deadline.
 * Each, when it persists, ends a push with exit 6 after a bounded number of
 * requests, the working copy untouched and nothing committed; once it clears,
 * a rerun completes and every byte arrives. (The S3 version, with transient
 * faults and stalled bodies too: tests/s3_fault_proxy_test.ts; Azurite
 * going down mid-push: tests/azure_faults_test.ts.)
 */
import assert from "node:assert/strict";
import {
  describe,
  expectCode,
  expectJson,
  FAULT_DEADLINES,
  reportByModel,
  snapshot,
  writeModelFiles,
} from "./_helpers.ts";
import { AzureSandbox, azureTestOptions } from "./_azure.ts";

Deno.test({
  name:
    "Azure faults that persist (503, 500, resets, no answer, latency past the deadline): exit 6 after bounded retries, nothing lost",
  ...azureTestOptions(),
  async fn() {
    await using az = await AzureSandbox.create("fp-persist", { proxy: true });
    const proxy = az.proxy!;
    const a = await az.sb.repo("a");
    await writeModelFiles(a, "vpc/m1", { count: 4, size: 30_000, seed: 3 });
    const before = await snapshot(a.path("models"));
    const faults: [string, () => void][] = [
      ["503 ServerBusy", () => (proxy.failRequest = () => 503)],
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
      for (const line of errors) {
        assert.ok(line.includes(az.container), `${name}\n${describe(res)}`);
      }
      assert.ok(most >= 2, `${name}: retried (${most} attempts)\n${proxy.summary()}`);
      assert.ok(most <= 4, `${name}: at most 4 attempts of one request, saw ${most}`);
      assert.ok(
        sent <= 24,
        `${name}: a bounded number of requests, saw ${sent}\n${proxy.summary()}`,
      );
      assert.deepEqual(await snapshot(a.path("models")), before, `${name}: local data untouched`);
      assert.deepEqual(await az.keys("heads/"), [], `${name}: nothing committed`);
    }
    const rerun = reportByModel(
      expectJson(expectCode(await a.run(["push", "--json"]), 0, "rerun"), "modelsync.push/1"),
    );
    assert.equal(rerun.get("vpc/m1")?.status, "pushed");
    assert.deepEqual(await az.keys("leases/"), [], "no lock left behind");
    const b = await az.sb.repo("b");
    expectCode(await b.run(["pull"]), 0, "fresh pull");
    assert.deepEqual(await snapshot(b.path("models")), before, "every byte arrives");
  },
});
