import assert from "node:assert/strict";
import { Backoff, runPool, SharedRead, sleep } from "./async.ts";

Deno.test("Backoff grows exponentially with full jitter up to its cap", () => {
  const top = new Backoff({ initialMs: 50, maxMs: 1_000, random: () => 0.999999 });
  const delays = Array.from({ length: 8 }, () => top.next());
  assert.deepEqual(delays, [49, 99, 199, 399, 799, 999, 999, 999]);
  const bottom = new Backoff({ random: () => 0 });
  assert.equal(bottom.next(), 1);
  const jittered = new Backoff();
  for (let i = 0; i < 50; i++) {
    const d = jittered.next();
    assert.ok(d >= 1 && d <= 1_000, `delay ${d} out of range`);
  }
  top.reset();
  assert.equal(top.next(), 49);
});

Deno.test("sleep resolves, and rejects with the abort reason without leaking its timer", async () => {
  await sleep(5);
  const ctl = new AbortController();
  const pending = sleep(10_000, ctl.signal);
  const reason = new Error("stop");
  ctl.abort(reason);
  await assert.rejects(pending, (err) => err === reason);
  await assert.rejects(sleep(1, ctl.signal), (err) => err === reason);
});

Deno.test("runPool keeps order, bounds concurrency and rejects with the first error", async () => {
  let inFlight = 0;
  let peak = 0;
  const out = await runPool([5, 1, 3, 2], { jobs: 2 }, async (n) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    await sleep(n);
    inFlight--;
    return n * 10;
  });
  assert.deepEqual(out, [50, 10, 30, 20]);
  assert.equal(peak, 2);
  await assert.rejects(
    runPool([1, 2], { jobs: 2 }, async (n) => {
      await sleep(1);
      if (n === 2) throw new Error("two");
      return n;
    }),
    /two/,
  );
});

Deno.test("SharedRead: callers share a call not sent yet, never one already in flight", async () => {
  const started: number[] = [];
  const finish: (() => void)[] = [];
  let n = 0;
  const reads = new SharedRead(() => {
    const id = ++n;
    started.push(id);
    return new Promise<number>((resolve) => finish.push(() => resolve(id)));
  });
  const a = reads.read();
  const b = reads.read(); // before the first call is sent: shares it
  await sleep(1);
  assert.deepEqual(started, [1]);
  const c = reads.read(); // while call 1 is in flight: waits for call 2
  const d = reads.read();
  await sleep(1);
  assert.deepEqual(started, [1], "call 2 waits until call 1 settled");
  finish[0]();
  assert.deepEqual(await Promise.all([a, b]), [1, 1]);
  await sleep(1);
  assert.deepEqual(started, [1, 2]);
  finish[1]();
  assert.deepEqual(await Promise.all([c, d]), [2, 2]);
  // A failed call fails its sharers only; the next caller gets a new call.
  const failing = new SharedRead(() => Promise.reject(new Error("down")));
  await assert.rejects(failing.read(), /down/);
  await assert.rejects(failing.read(), /down/);
});
