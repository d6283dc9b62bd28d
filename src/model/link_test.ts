import assert from "node:assert/strict";
import { hashBytes } from "./hash.ts";
import { linkEntryProblem, linkListProblems, linkTargetProblem, resolveLink } from "./link.ts";

const none = { lookup: () => undefined };
const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("resolveLink: lexical resolution inside and outside the model", () => {
  assert.deepEqual(resolveLink("a", "b", none), { kind: "inside", path: "b" });
  assert.deepEqual(resolveLink("d/e/a", "../../x", none), { kind: "inside", path: "x" });
  assert.deepEqual(resolveLink("a", ".", none), { kind: "inside", path: "" });
  assert.deepEqual(resolveLink("a", "./b//c/", none), { kind: "inside", path: "b/c" });
  assert.equal(resolveLink("a", "..", none).kind, "outside");
  assert.equal(resolveLink("d/a", "../../x", none).kind, "outside");
  assert.equal(resolveLink("a", "/etc/passwd", none).kind, "outside");
});

Deno.test("resolveLink follows other links on the way, and finds loops", () => {
  const tree = new Map<string, "dir" | "file" | { link: string }>([
    ["self", { link: "." }],
    ["deep", "dir"],
    ["deep/er", "dir"],
    ["up", { link: "deep/er" }],
    ["abs", { link: "/tmp" }],
    ["l1", { link: "l2" }],
    ["l2", { link: "l1" }],
  ]);
  const lookup = { lookup: (p: string) => tree.get(p) };
  // Lexically "x", but self is the model directory, so self/.. is above it.
  assert.deepEqual(resolveLink("a", "self/../x", lookup), { kind: "outside", via: "" });
  assert.deepEqual(resolveLink("a", "up/../../x", lookup), { kind: "inside", path: "x" });
  assert.deepEqual(resolveLink("a", "abs/x", lookup), { kind: "outside", via: "abs (-> /tmp)" });
  assert.deepEqual(resolveLink("a", "l1", lookup), { kind: "loop" });
  assert.deepEqual(resolveLink("a", "missing/../deep", lookup), { kind: "inside", path: "deep" });
});

Deno.test("linkListProblems checks a file list's links through each other", () => {
  assert.deepEqual(linkListProblems([{ path: "a.txt" }, { path: "b", link: "a.txt" }]), []);
  assert.deepEqual(
    linkListProblems([{ path: "self", link: "." }, { path: "a", link: "self/../x" }]),
    [{ path: "a", problem: "a symlink to self/../x that leaves the model" }],
  );
  assert.deepEqual(linkListProblems([{ path: "x", link: "y" }, { path: "y", link: "x" }]), [
    { path: "x", problem: "a symlink loop" },
    { path: "y", problem: "a symlink loop" },
  ]);
});

Deno.test("linkTargetProblem and linkEntryProblem", () => {
  assert.equal(linkTargetProblem("a/b"), undefined);
  assert.match(linkTargetProblem("")!, /empty/);
  assert.match(linkTargetProblem("/x")!, /absolute/);
  assert.match(linkTargetProblem("a\0b")!, /NUL/);
  assert.match(linkTargetProblem("a\\b")!, /backslash/);
  assert.match(linkTargetProblem("\ud800")!, /well-formed/);
  const ok = { sha256: hashBytes(enc("t")), size: 1, executable: false, link: "t" };
  assert.equal(linkEntryProblem(ok), undefined);
  assert.match(linkEntryProblem({ ...ok, size: 2 })!, /do not describe its target/);
  assert.match(linkEntryProblem({ ...ok, sha256: "0".repeat(64) })!, /do not describe/);
  assert.match(linkEntryProblem({ ...ok, executable: true })!, /executable/);
});
