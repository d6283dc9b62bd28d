/**
 * End-to-end request counts on an S3 datastore: with 100 models in sync, a
 * no-op pull, push or flush costs a handful of requests, not one or more per
 * model (the zero-diff fast path lists the manifests once); and a first push
 * of 10 models costs a fixed number of lock and commit requests per model on
 * the scoped and the global path (design/locks.md, "Requests per model").
 * Counted with the test proxy; the breakdown is printed when a bound is
 * broken.
 */
import assert from "node:assert/strict";
import { describe, expectCode, expectJson, type RunResult } from "./_helpers.ts";
import type { ProxiedRequest } from "./_s3_proxy.ts";
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

/** What a request is about: `lock:global`, `lock:model`, `head`, `history`, `gc`, `blob`, …. */
function kindOf(r: ProxiedRequest, prefix: string): string {
  const rel = decodeURIComponent(r.path).replace(/^\/[^/]+\//, "").slice(prefix.length + 1);
  const kind = rel.startsWith("leases/global")
    ? "lock:global"
    : rel.startsWith("leases/")
    ? "lock:model"
    : rel === "gc"
    ? "gc"
    : rel.split("/")[0] || "list";
  return `${kind} ${r.method}`;
}

for (const path of ["scoped", "global"] as const) {
  Deno.test({
    name: `S3: a first push of 10 models on the ${path} path: lock and commit requests per model`,
    ...s3TestOptions(),
    async fn() {
      await using s3 = await S3Sandbox.create(`e2e-commit-${path}`, { proxy: true });
      const proxy = s3.proxy!;
      const a = await s3.sb.repo("a");
      const models = 10;
      for (let i = 0; i < models; i++) await a.write(`models/fleet/m${i}/w.bin`, `weights ${i}\n`);
      proxy.reset();
      const args = path === "global" ? ["--disable-cap", "scopedSync"] : [];
      const res = expectCode(await a.run(["push", "--json", ...args]), 0, "first push");
      assert.equal(summaryOf(res, "modelsync.push/1").pushed, models, describe(res));
      const counts = new Map<string, number>();
      for (const r of proxy.requests) {
        const k = kindOf(r, s3.prefix);
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
      const n = (k: string) => counts.get(k) ?? 0;
      const breakdown = [...counts].sort().map(([k, v]) => `${k}: ${v}`).join("\n");
      // Per model, whatever the path: read the head under the lock, then the
      // history record and the head's compare-and-swap.
      assert.equal(n("heads GET"), models, breakdown);
      assert.equal(n("heads PUT"), models, breakdown);
      assert.equal(n("history PUT"), models, breakdown);
      if (path === "scoped") {
        // Per model: take the lock, confirm it before the commit, release it.
        assert.equal(n("lock:model PUT"), 2 * models, breakdown);
        assert.equal(n("lock:model DELETE"), models, breakdown);
        // Shared by the models locked together: the global lock's check
        // after taking them (two per model before), and the gc mark's read
        // under the locks (one per model before), besides its one read
        // before the uploads.
        assert.ok(n("lock:global GET") + n("gc GET") - 1 <= models, breakdown);
      } else {
        // One global lock for the run: take it, confirm it (concurrent
        // commits share a renewal in flight), release it; the gc mark read
        // once before the uploads and once under the lock.
        assert.equal(n("lock:model PUT"), 0, breakdown);
        assert.ok(n("lock:global PUT") <= 4, breakdown);
        assert.equal(n("lock:global DELETE"), 1, breakdown);
        assert.equal(n("gc GET"), 2, breakdown);
      }
      const lockAndCommit = [...counts].filter(([k]) => /^(lock:\w+|heads|history|gc) /.test(k))
        .reduce((sum, [, v]) => sum + v, 0);
      // Measured: 66 to 67 scoped, 36 global (80 and 36 before: two global checks per model).
      const bound = path === "scoped" ? 7 * models + 1 : 3 * models + 8;
      assert.ok(lockAndCommit <= bound, `${lockAndCommit} > ${bound}\n${breakdown}`);
    },
  });
}
