import assert from "node:assert/strict";
import { Progress } from "./progress.ts";

Deno.test("Progress: bytes count as they stream, capped at the file's size; done credits the rest", () => {
  const p = new Progress("push", { mode: "none" });
  p.addTotal(2, 300);
  const a = p.track(100);
  a.bytes(40);
  assert.equal(p.snapshot().bytes, 40);
  assert.equal(p.snapshot().files, 0, "a file in flight is not counted as done");
  a.bytes(100); // a retry streams again: never more than the file
  assert.equal(p.snapshot().bytes, 100);
  a.done();
  a.done();
  const b = p.track(200);
  b.done(); // a provider that never reports bytes
  const s = p.snapshot();
  assert.deepEqual([s.files, s.totalFiles, s.bytes, s.totalBytes], [2, 2, 300, 300]);
});
