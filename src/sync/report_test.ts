import assert from "node:assert/strict";
import {
  ConflictError,
  ContentChangedError,
  DatastoreError,
  LeaseLostError,
  LockTimeoutError,
} from "../errors.ts";
import { exitCodeFor, failureReport, type ModelReport, summarize } from "./report.ts";
import { listPaths } from "./format.ts";

const ok = (model: string): ModelReport => ({
  model,
  status: "pushed",
  files: 1,
  bytes: 1,
  generation: 1,
  ms: 1,
});
const m = { type: "vpc", id: "m1" };

Deno.test("exitCodeFor: 0 when every model succeeded", () => {
  assert.equal(exitCodeFor([ok("a/1"), { ...ok("a/2"), status: "unchanged" }]), 0);
  assert.equal(exitCodeFor([]), 0);
});

Deno.test("exitCodeFor: conflicts only -> 4, lock timeouts only -> 75", () => {
  assert.equal(exitCodeFor([ok("a/1"), failureReport(m, new ConflictError("x"), 1)]), 4);
  assert.equal(exitCodeFor([failureReport(m, new LockTimeoutError("x"), 1)]), 75);
});

Deno.test("exitCodeFor: a failure beside a success is partial (5); all failing keeps the shared code", () => {
  assert.equal(exitCodeFor([ok("a/1"), failureReport(m, new DatastoreError("down"), 1)]), 5);
  assert.equal(exitCodeFor([failureReport(m, new DatastoreError("down"), 1)]), 6);
  assert.equal(
    exitCodeFor([
      failureReport(m, new DatastoreError("down"), 1),
      failureReport(m, new Error("boom"), 1),
    ]),
    5,
  );
});

Deno.test("exitCodeFor: a lost lease is lease-lost (75); held whole-model deletes only -> 2", () => {
  const lost = failureReport(m, new LeaseLostError("Lost the lock on vpc/m1: ..."), 1);
  assert.equal(lost.status, "lease-lost");
  assert.equal(exitCodeFor([lost, failureReport(m, new LockTimeoutError("x"), 1)]), 75);
  const held: ModelReport = { ...ok("a/2"), status: "delete-pending", exitCode: 2 };
  assert.equal(exitCodeFor([ok("a/1"), held]), 2);
  assert.equal(exitCodeFor([held, failureReport(m, new ConflictError("x"), 1)]), 5);
  assert.equal(exitCodeFor([ok("a/1"), { ...ok("a/3"), status: "kept" }]), 0);
  assert.deepEqual(summarize([held, lost, { ...ok("a/3"), status: "deleted" }]), {
    pushed: 0,
    pulled: 0,
    deleted: 1,
    kept: 0,
    unchanged: 0,
    deletePending: 1,
    conflict: 0,
    changed: 0,
    failed: 0,
    lockTimeout: 0,
    leaseLost: 1,
    interrupted: 0,
  });
});

Deno.test("failureReport carries the conflict paths", () => {
  const r = failureReport(m, new ConflictError("both changed", { paths: ["a.bin"] }), 3);
  assert.equal(r.status, "conflict");
  assert.deepEqual(r.conflicts, ["a.bin"]);
  assert.equal(r.model, "vpc/m1");
});

Deno.test("failureReport: a file changed during push is status changed (exit 4); a local file problem is exit 2", () => {
  const changed = failureReport(m, new ContentChangedError("changed while being pushed"), 1);
  assert.equal(changed.status, "changed");
  assert.equal(exitCodeFor([changed]), 4);
  const local = failureReport(
    m,
    new Deno.errors.IsADirectory("Is a directory (os error 21): open '/r/x'"),
    1,
  );
  assert.equal(local.status, "failed");
  assert.equal(local.exitCode, 2);
  assert.match(
    local.error ?? "",
    /^Cannot use a local file: Is a directory .*'\/r\/x'\. Fix or remove that path/,
  );
  const bug = failureReport(m, new TypeError("x is undefined"), 1);
  assert.equal(bug.exitCode, 1);
});

Deno.test("listPaths keeps a file name with a newline on one line", () => {
  assert.equal(
    listPaths(["a.txt", "new\nline", "esc\u001b[31m"]),
    "a.txt, new\\nline, esc\\x1b[31m",
  );
});
