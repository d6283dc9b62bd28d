import assert from "node:assert/strict";
import { type FileState, mergeStates, sameState, threeWay } from "./three_way.ts";
import { effectiveBase, fileDirClashes } from "./states.ts";

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

Deno.test("effectiveBase trusts the landing journal only where the local file equals it", () => {
  const base = new Map([["a", f("1")], ["b", f("1")], ["gone", f("1")]]);
  const landing = new Map<string, FileState | null>([["a", f("2")], ["b", f("2")], ["gone", null]]);
  const local = new Map([["a", f("2")], ["b", f("9")]]);
  const eff = effectiveBase(base, { landing, local });
  assert.equal(eff.get("a")!.sha256, "2", "landed by modelsync: not a local change");
  assert.equal(eff.get("b")!.sha256, "1", "edited by the user since: stays a local change");
  assert.equal(eff.has("gone"), false, "removed by modelsync");
  assert.deepEqual(fileDirClashes(new Map([["w", f("1")], ["w/x", f("2")], ["v/y", f("3")]])), [
    "w",
  ]);
});

Deno.test("a link and a file with the same bytes are different states", () => {
  const file = f("1");
  const link = { ...f("1"), link: "target" };
  assert.equal(sameState(file, link), false);
  assert.equal(sameState(link, { ...link }), true);
  const plan = threeWay({
    base: new Map([["x", file]]),
    local: new Map([["x", link]]),
    remote: new Map([["x", file]]),
  });
  assert.deepEqual(plan.keepLocal, ["x"], "a file replaced by a link is a local change");
  const both = threeWay({
    base: new Map([["x", f("0")]]),
    local: new Map([["x", link]]),
    remote: new Map([["x", file]]),
  });
  assert.deepEqual(both.conflicts, ["x"], "a link here and a file there with the same bytes");
});
