import assert from "node:assert/strict";
import nodePath from "node:path";
import { joinRel, nameProblem, pathProblem, syncablePathProblem } from "./path.ts";

Deno.test("syncablePathProblem: the path rules and what the scanner never syncs", () => {
  for (const ok of ["a", "a/b.txt", "ünï/cödé", "a\uFFFDb", ".modelsyncx", "x/.modelsync-1.part"]) {
    assert.equal(syncablePathProblem(ok), undefined, ok);
  }
  const bad: [string, RegExp][] = [
    ["", /empty/],
    ["/a", /absolute/],
    ["C:/a", /drive letter/],
    ["a//b", /empty segment/],
    ["a/", /empty segment/],
    ["./a", /'\.' or '\.\.'/],
    ["a/../b", /'\.' or '\.\.'/],
    ["a\\b", /backslash/],
    ["a\0b", /NUL/],
    [".modelsync", /\.modelsync segment/],
    ["sub/.modelsync/base/x.json", /\.modelsync segment/],
    ["a\ud800", /well-formed/],
    ["x".repeat(1025), /over 1024 bytes/],
  ];
  for (const [path, re] of bad) assert.match(syncablePathProblem(path) ?? "", re, path);
  // pathProblem keeps to the escape rules (a data folder may be named anything else).
  assert.equal(pathProblem("sub/.modelsync"), undefined);
});

Deno.test("nameProblem is syncablePathProblem for one name", () => {
  for (const name of ["a", "..", ".", "", ".modelsync", "a\\b", "a\0b", "é"]) {
    assert.equal(
      nameProblem(name),
      name === "" ? "it has an empty segment" : syncablePathProblem(name),
      name,
    );
  }
});

Deno.test("joinRel gives what path.join gives for a normal directory and a canonical path", () => {
  const dirs = ["/", "/repo", "/repo/data/model/a", "/tmp/x y", "relative/dir"];
  const rels = ["a", "a/b", "sub/dir/file.bin", "ünï/ç", "x.y/z..w", ".hidden/f", "a b/c"];
  for (const dir of dirs) {
    for (const rel of rels) {
      assert.equal(pathProblem(rel), undefined);
      assert.equal(joinRel(dir, rel), nodePath.join(dir, rel), `${dir} + ${rel}`);
    }
  }
});
