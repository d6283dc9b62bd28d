/**
 * End-to-end request counts on an S3 datastore: with 100 models in sync, a
 * no-op pull, push or flush costs a handful of requests, not one or more per
 * model (the zero-diff fast path lists the manifests once). Counted with the
 * test proxy; the breakdown is printed when a bound is broken.
 */
import assert from "node:assert/strict";
import { describe, expectCode, expectJson, type RunResult } from "./_helpers.ts";
import { S3Sandbox, s3TestOptions } from "./_s3.ts";

const MODELS = 100;
/** The most requests a no-op run may make on 100 models (measured: see the README). */
const NOOP_BOUND = 3;

function summaryOf(res: RunResult, schema: string): Record<string, number> {
  return expectJson(res, schema).summary as Record<string, number>;
}

Deno.test({
  name: "S3: no-op pull, push and flush of 100 models make at most 3 requests each",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-requests", { proxy: true });
    const proxy = s3.proxy!;
    const a = await s3.sb.repo("a", { MODELSYNC_HOLDER: "alice" });
    const b = await s3.sb.repo("b", { MODELSYNC_HOLDER: "bob" });
    for (let i = 0; i < MODELS; i++) {
      // One small file each, the same content: 100 manifests, one blob (moto is slow).
      await a.write(`models/fleet/m${String(i).padStart(3, "0")}/weights.bin`, "weights\n");
    }
    // The set-up push takes the global path: one lock instead of one per model (fewer requests).
    const first = expectCode(
      await a.run(["push", "--json", "--disable-cap", "scopedSync"]),
      0,
      "first push",
    );
    assert.equal(summaryOf(first, "modelsync.push/1").pushed, MODELS, describe(first));
    expectCode(await b.run(["pull", "--no-lock", "--json"]), 0, "first pull");

    const measure = async (repo: typeof a, args: string[], schema: string) => {
      proxy.reset();
      const res = expectCode(await repo.run([...args, "--json"]), 0, args.join(" "));
      const summary = summaryOf(res, schema);
      const count = proxy.count;
      const breakdown = proxy.summary();
      return { res, summary, count, breakdown };
    };

    const pull = await measure(b, ["pull"], "modelsync.pull/1");
    assert.equal(pull.summary.unchanged, MODELS, describe(pull.res));
    assert.ok(
      pull.count <= NOOP_BOUND,
      `no-op pull of ${MODELS} models made ${pull.count} requests (bound ${NOOP_BOUND}):\n${pull.breakdown}`,
    );
    const push = await measure(a, ["push"], "modelsync.push/1");
    assert.equal(push.summary.pushed, 0, describe(push.res));
    assert.ok(
      push.count <= NOOP_BOUND,
      `no-op push of ${MODELS} models made ${push.count} requests (bound ${NOOP_BOUND}):\n${push.breakdown}`,
    );
    const flush = await measure(a, ["flush"], "modelsync.flush/1");
    assert.equal(flush.summary.pushed, 0, describe(flush.res));
    assert.ok(
      flush.count <= NOOP_BOUND,
      `no-op flush of ${MODELS} models made ${flush.count} requests (bound ${NOOP_BOUND}):\n${flush.breakdown}`,
    );
    // None of them wrote anything but (at most) the datastore marker.
    for (const m of [pull, push, flush]) {
      const writes = m.breakdown.split("\n").filter((l) =>
        /^(PUT|POST|DELETE) /.test(l) && !l.includes("/config?")
      );
      assert.deepEqual(writes, [], m.breakdown);
    }
  },
});
