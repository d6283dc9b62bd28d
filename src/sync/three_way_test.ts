import assert from "node:assert/strict";
import { type FileState, mergeStates, threeWay } from "./three_way.ts";

const f = (sha256: string, executable = false): FileState => ({ sha256, size: 1, executable });

Deno.test("threeWay sorts each path into remote-only, local-only, converged and conflict", () => {
  const input = {
    base: new Map([["same", f("s")], ["lmod", f("1")], ["rmod", f("1")], ["both", f("1")], [
      "conv",
      f("1"),
    ], ["rdel", f("1")]]),
    local: new Map([
      ["same", f("s")],
      ["lmod", f("2")],
      ["rmod", f("1")],
      ["both", f("2")],
      ["conv", f("9")],
      ["rdel", f("1")],
      ["ladd", f("a")],
    ]),
    remote: new Map([["same", f("s")], ["lmod", f("1")], ["rmod", f("3")], ["both", f("3")], [
      "conv",
      f("9"),
    ], ["radd", f("b")]]),
  };
  const plan = threeWay(input);
  assert.deepEqual(plan.takeRemote, ["radd", "rdel", "rmod"]);
  assert.deepEqual(plan.keepLocal, ["ladd", "lmod"]);
  assert.deepEqual(plan.converged, ["conv"]);
  assert.deepEqual(plan.conflicts, ["both"]);
  const merged = mergeStates(input, plan, { theirs: false });
  assert.deepEqual([...merged.keys()].sort(), [
    "both",
    "conv",
    "ladd",
    "lmod",
    "radd",
    "rmod",
    "same",
  ]);
  assert.equal(merged.get("lmod")!.sha256, "2");
  assert.equal(merged.get("rmod")!.sha256, "3");
  assert.equal(merged.get("both")!.sha256, "2");
  assert.equal(mergeStates(input, plan, { theirs: true }).get("both")!.sha256, "3");
});

Deno.test("threeWay treats an executable-bit change as a change", () => {
  const plan = threeWay({
    base: new Map([["x", f("1")]]),
    local: new Map([["x", f("1", true)]]),
    remote: new Map([["x", f("1")]]),
  });
  assert.deepEqual(plan.keepLocal, ["x"]);
});

Deno.test("threeWay: a local delete of a file the remote changed is a conflict", () => {
  const plan = threeWay({
    base: new Map([["x", f("1")]]),
    local: new Map(),
    remote: new Map([["x", f("2")]]),
  });
  assert.deepEqual(plan.conflicts, ["x"]);
});
