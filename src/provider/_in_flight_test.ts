import assert from "node:assert/strict";
import { InFlight, type InFlightCall } from "./_in_flight.ts";

function call(dueInMs: number, log: string[], name: string): InFlightCall {
  return {
    due: performance.now() + dueInMs,
    expire: () => log.push(`${name} expired`),
    abort: (reason) => log.push(`${name} aborted: ${reason}`),
  };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("InFlight: each call expires at its own deadline, an earlier one added later included", async () => {
  const calls = new InFlight();
  const log: string[] = [];
  const slow = call(120, log, "slow");
  const fast = call(20, log, "fast");
  calls.add(slow, undefined);
  calls.add(fast, undefined);
  await wait(60);
  assert.deepEqual(log, ["fast expired"]);
  await wait(100);
  assert.deepEqual(log, ["fast expired", "slow expired"]);
  calls.delete(fast, undefined);
  calls.delete(slow, undefined);
  assert.equal(calls.size, 0);
});

Deno.test("InFlight: a settled call never expires, and no timer outlives the last call", async () => {
  const calls = new InFlight();
  const log: string[] = [];
  const c = call(20, log, "c");
  calls.add(c, undefined);
  calls.delete(c, undefined);
  await wait(40);
  assert.deepEqual(log, []);
  // The test sanitizer fails the test if a timer is left behind.
});

Deno.test("InFlight: a caller's abort reaches only its own calls in flight", () => {
  const calls = new InFlight();
  const log: string[] = [];
  const a = new AbortController();
  const b = new AbortController();
  const a1 = call(10_000, log, "a1");
  const a2 = call(10_000, log, "a2");
  const done = call(10_000, log, "done");
  const b1 = call(10_000, log, "b1");
  calls.add(a1, a.signal);
  calls.add(a2, a.signal);
  calls.add(done, a.signal);
  calls.add(b1, b.signal);
  calls.delete(done, a.signal);
  a.abort("stop");
  assert.deepEqual(log, ["a1 aborted: stop", "a2 aborted: stop"]);
  calls.delete(a1, a.signal);
  calls.delete(a2, a.signal);
  assert.equal(calls.size, 1);
  calls.delete(b1, b.signal);
  assert.equal(calls.size, 0);
});
