/**
 * End-to-end request counts on an Azure datastore: with 100 models in sync, a
 * no-op pull, push or flush costs a handful of requests, not one or more per
 * model (the zero-diff fast path lists the heads once). Counted with the test
 * proxy in front of Azurite; the breakdown is printed when a bound is broken.
 */
import assert from "node:assert/strict";
import { describe, expectCode, expectJson, type RunResult } from "./_helpers.ts";
import { AzureSandbox, azureTestOptions } from "./_azure.ts";

const MODELS = 100;
/** The most requests a no-op run may make on 100 models (measured: see the README). */
const NOOP_BOUND = 3;

function summaryOf(res: RunResult, schema: string): Record<string, number> {
  return expectJson(res, schema).summary as Record<string, number>;
}

Deno.test({
  name: "Azure: no-op pull, push and flush of 100 models make at most 3 requests each",
  ...azureTestOptions(),
  async fn() {
    await using az = await AzureSandbox.create("e2e-requests", { proxy: true });
    const proxy = az.proxy!;
    const a = await az.sb.repo("a", { MODELSYNC_HOLDER: "alice" });
    const b = await az.sb.repo("b", { MODELSYNC_HOLDER: "bob" });
    for (let i = 0; i < MODELS; i++) {
      await a.write(`models/fleet/m${String(i).padStart(3, "0")}/weights.bin`, `weights ${i}\n`);
    }
    const first = expectCode(await a.run(["push", "--json"]), 0, "first push");
    assert.equal(summaryOf(first, "modelsync.push/1").pushed, MODELS, describe(first));
    expectCode(await b.run(["pull", "--json"]), 0, "first pull");

    const measure = async (repo: typeof a, args: string[], schema: string) => {
      proxy.reset();
      const res = expectCode(await repo.run([...args, "--json"]), 0, args.join(" "));
      return {
        res,
        summary: summaryOf(res, schema),
        count: proxy.count,
        breakdown: proxy.summary(),
      };
    };
    const pull = await measure(b, ["pull"], "modelsync.pull/1");
    assert.equal(pull.summary.unchanged, MODELS, describe(pull.res));
    const push = await measure(a, ["push"], "modelsync.push/1");
    assert.equal(push.summary.pushed, 0, describe(push.res));
    const flush = await measure(a, ["flush"], "modelsync.flush/1");
    assert.equal(flush.summary.pushed, 0, describe(flush.res));
    for (const [what, m] of Object.entries({ pull, push, flush })) {
      assert.ok(
        m.count <= NOOP_BOUND,
        `no-op ${what} of ${MODELS} models made ${m.count} requests (bound ${NOOP_BOUND}):\n${m.breakdown}`,
      );
      // Nothing was written but (at most) the datastore marker's honesty check.
      const writes = m.breakdown.split("\n").filter((l) =>
        /^(PUT|POST|DELETE) /.test(l) && !/\/config(\?|$)/.test(l)
      );
      assert.deepEqual(writes, [], m.breakdown);
    }
  },
});
