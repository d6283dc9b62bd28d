import assert from "node:assert/strict";
import { ByteBudget, partSizeOf } from "./multipart.ts";

Deno.test("ByteBudget: waits in order, lets an oversized ask through alone, drops an aborted waiter", async () => {
  const b = new ByteBudget(10);
  await b.take(6);
  const order: string[] = [];
  const second = b.take(6).then(() => order.push("second"));
  const small = b.take(1).then(() => order.push("small")); // fits, but waits its turn
  await Promise.resolve();
  assert.equal(b.held, 6);
  b.give(6);
  await Promise.all([second, small]);
  assert.deepEqual(order, ["second", "small"]);
  assert.equal(b.held, 7);
  b.give(7);
  await b.take(25); // more than the limit: alone
  const stop = new AbortController();
  const aborted = b.take(1, stop.signal);
  stop.abort(new Error("stopped"));
  await assert.rejects(aborted, /stopped/);
  b.give(25);
  assert.equal(b.held, 0);
  await b.take(10);
  assert.equal(b.held, 10);
});

Deno.test("partSizeOf: 8 MiB, more once 10,000 parts would not hold the file", () => {
  const MiB = 1024 * 1024;
  assert.equal(partSizeOf(64 * MiB + 1), 8 * MiB);
  assert.equal(partSizeOf(80_000 * MiB), 8 * MiB);
  assert.equal(partSizeOf(80_000 * MiB + 1), 9 * MiB);
  assert.ok(Math.ceil(5 * 2 ** 40 / partSizeOf(5 * 2 ** 40)) <= 10_000);
});
