/**
 * Regression tests for the bugs the fuzzer found (fuzz/, design/fuzz.md):
 * each was a case of `deno task fuzz` before it was fixed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { expectCode, Sandbox } from "./_helpers.ts";

Deno.test("a YAML warning in modelsync.yaml (an unknown directive) is one modelsync warning, not a Node warning", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("a");
  const yaml = await repo.read("modelsync.yaml");
  await repo.write("modelsync.yaml", `%FOO bar\n---\n${yaml}`);
  const res = expectCode(await repo.run(["status"]), 0);
  const lines = res.stderr.split("\n").filter((l) => l.trim() !== "");
  assert.deepEqual(
    lines,
    [
      "modelsync: warning: modelsync.yaml: Unknown directive %FOO at line 1, column 1; ignored.",
    ],
    res.stderr,
  );
});
