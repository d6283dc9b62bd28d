/**
 * Regression tests for the bugs the fuzzer found (fuzz/, design/fuzz.md):
 * each was a case of `deno task fuzz` before it was fixed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { expectCode, expectOneLineError, Sandbox } from "./_helpers.ts";

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

Deno.test("a lock record with an unreadable acquiredAt is a corrupt record, not a lock of age NaN", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("a");
  await sb.datastore.plantLock("vpc/m1", {
    key: "vpc/m1",
    holder: "ci",
    host: "elsewhere",
    pid: 1,
    operation: "push",
    acquiredAt: "2026-12-04T19:13:29.171ZC:/x",
    renewedAt: new Date().toISOString(),
    ttlMs: 30_000,
    nonce: "d08a9f17f547c54c44911e06666a4d06",
  });
  const text = expectCode(await repo.run(["lock", "status"]), 0).stdout;
  assert.doesNotMatch(text, /NaN/, text);
  assert.match(text, /^vpc\/m1 +corrupt +corrupt record .*corrupt record; not stale yet/m, text);
  const doc = expectCode(await repo.run(["lock", "status", "--json"]), 0).json();
  const [lock] = doc.locks as Record<string, unknown>[];
  assert.equal(typeof lock.ageMs, "number", JSON.stringify(lock));
  assert.ok(Number.isFinite(lock.ageMs), JSON.stringify(lock));
});

Deno.test("a file: datastore spec with a malformed %-escape is a usage error (exit 2), not an unexpected failure", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("a");
  for (const spec of ["file:/%/%00", "file:%%2e%2e/x//", "file:/x/%E0%A4%A"]) {
    const line = expectOneLineError(
      await repo.run(["--datastore", spec, "status", "--remote"]),
      2,
      spec,
    );
    assert.match(
      line,
      /^modelsync: error: Invalid --datastore ".*": it is not a valid file:\/\/ URL/,
    );
  }
});

Deno.test("a datastore spec whose query holds a line break never prints what follows it (credentials)", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("a");
  for (
    const spec of [
      "s3://bucket/p?secretAccessKey=\nFZ-SECRET-1",
      "s3://bucket/p?x=1\r\n&sig=FZ-SECRET-1",
      "postgres://127.0.0.1:1/db?password=\nFZ-SECRET-1",
      "s3://bucket/p#\nFZ-SECRET-1",
    ]
  ) {
    const res = await repo.run(["--datastore", spec, "--timeout", "5s", "status", "--remote"]);
    assert.doesNotMatch(
      res.stdout + res.stderr,
      /FZ-SECRET-1/,
      `${JSON.stringify(spec)}\n${res.stderr}`,
    );
  }
});

Deno.test("an unknown modelsync.yaml key with control characters is echoed escaped, on one line", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("a");
  const yaml = await repo.read("modelsync.yaml");
  await repo.write("modelsync.yaml", `${yaml}"excl\\ru\\u001b[31mde": []\n`);
  const line = expectOneLineError(await repo.run(["status"]), 2);
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(line, /[\u0000-\u001f\u007f]/, JSON.stringify(line));
  assert.match(line, /unknown key "excl\\ru\\x1b\[31mde"\. Remove it or fix the spelling/);
});

Deno.test("an error echoing input with DEL or C1 control characters shows them escaped", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("a");
  for (const arg of ["a\u007f_", "vpc/\u009b31m", "x\u2028y/z"]) {
    const line = expectOneLineError(await repo.run(["status", arg]), 2, JSON.stringify(arg));
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/, JSON.stringify(line));
    assert.match(line, /Invalid model ref "(a\\x7f_|vpc\/\\x9b31m|x\\u2028y\/z)"/, line);
  }
});
