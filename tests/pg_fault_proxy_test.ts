/**
 * Network faults between modelsync and a PostgreSQL datastore, injected by
 * the TCP proxy of tests/_pg_proxy.ts (issue 13, point 4): every connection
 * reset as soon as it is made, and latency past the call deadline. Each,
 * while it persists, ends a push with exit 6 after a bounded number of
 * connections, the working copy untouched and nothing committed; once it
 * clears, a rerun completes and every byte arrives. (The server going away
 * in the middle of a push: tests/pg_faults_test.ts.)
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
import { PgSandbox, pgTestOptions } from "./_pg.ts";

Deno.test({
  name:
    "PostgreSQL faults that persist (connections reset, latency past the deadline): exit 6 after bounded retries, nothing lost",
  ...pgTestOptions(),
  async fn() {
    await using pg = await PgSandbox.create("fp-persist", { proxy: true });
    const proxy = pg.proxy!;
    const a = await pg.sb.repo("a");
    await writeModelFiles(a, "vpc/m1", { count: 4, size: 30_000, seed: 3 });
    const before = await snapshot(a.path("models"));
    const faults: [string, () => void][] = [
      ["every connection reset", () => (proxy.resetConnections = true)],
      ["latency 1.5 s, past the 1 s call deadline", () => (proxy.latencyMs = 1_500)],
    ];
    for (const [name, inject] of faults) {
      proxy.reset();
      inject();
      const res = await a.run(["push", "--json", ...FAULT_DEADLINES]);
      const connections = proxy.connections;
      proxy.resetConnections = false;
      proxy.latencyMs = 0;
      expectCode(res, 6, `push under ${name}`);
      const errors = res.stderr.split("\n").filter((l) => l.startsWith("modelsync: error: "));
      assert.ok(errors.length >= 1, `${name}\n${describe(res)}`);
      assert.ok(errors.every((l) => l.includes("postgres")), `${name}\n${describe(res)}`);
      // Measured: 34-38 connections under resets (the guard tries each call 4 times, and
      // connections after one that failed are spaced out, 25 ms doubling to 500 ms; before
      // that spacing the client reconnected at once and made 23-113); the point is a bound.
      console.log(`${name}: ${connections} connections`);
      assert.ok(connections <= 48, `${name}: bounded, ${connections} connections`);
      assert.deepEqual(await snapshot(a.path("models")), before, `${name}: local data untouched`);
      assert.equal(await pg.count("blobs"), 0, `${name}: nothing stored`);
    }
    const rerun = reportByModel(
      expectJson(expectCode(await a.run(["push", "--json"]), 0, "rerun"), "modelsync.push/1"),
    );
    assert.equal(rerun.get("vpc/m1")?.status, "pushed");
    const b = await pg.sb.repo("b");
    expectCode(await b.run(["pull"]), 0, "fresh pull");
    assert.deepEqual(await snapshot(b.path("models")), before, "every byte arrives");
  },
});
