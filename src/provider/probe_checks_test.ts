import assert from "node:assert/strict";
import { runProbeChecks } from "./probe_checks.ts";

Deno.test("probe checks: each is reported ok or failed with its message, and clean-up always runs", async () => {
  let cleaned = 0;
  const out = await runProbeChecks([
    [{ name: "a", capability: "atomicCommit" }, () => Promise.resolve("held")],
    [{ name: "b" }, () => Promise.reject(new Error("two winners"))],
  ], {
    cleanUp: () => {
      cleaned++;
      return Promise.reject(new Error("ignored"));
    },
  });
  assert.deepEqual(out, [
    { name: "a", capability: "atomicCommit", ok: true, detail: "held" },
    { name: "b", ok: false, detail: "two winners" },
  ]);
  assert.equal(cleaned, 1);
});

Deno.test("probe checks: an abort stops the run and still cleans up", async () => {
  const ctl = new AbortController();
  let cleaned = 0;
  let ran = 0;
  const run = runProbeChecks([
    [{ name: "a" }, () => {
      ran++;
      ctl.abort(new DOMException("stop", "AbortError"));
      return Promise.resolve("ok");
    }],
    [{ name: "b" }, () => Promise.resolve(String(++ran))],
  ], { signal: ctl.signal, cleanUp: () => Promise.resolve(cleaned++) });
  await assert.rejects(run, (e) => e instanceof DOMException && e.name === "AbortError");
  assert.equal(ran, 1);
  assert.equal(cleaned, 1);
});
