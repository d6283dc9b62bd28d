/**
 * `status` without the datastore (issue 14 point 5): plain status works
 * offline and lists changed files; `--remote` needs the datastore;
 * `--exit-code` tells changed from clean.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, expectCode, expectJson, expectOneLineError, Sandbox } from "./_helpers.ts";

Deno.test("status works with the datastore directory removed and lists changed files", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.write("models/vision/resnet/keep.txt", "k");
  await a.write("models/vision/resnet/edit.txt", "1");
  await a.write("models/vision/resnet/gone.txt", "g");
  await a.write("models/audio/clean/x.txt", "x");
  expectCode(await a.run(["push"]), 0);
  await a.write("models/vision/resnet/edit.txt", "22");
  await Deno.remove(a.path("models/vision/resnet/gone.txt"));
  await a.write("models/vision/resnet/new.txt", "n");
  await Deno.remove(sb.datastore.dir, { recursive: true });

  const res = expectCode(await a.run(["status"]), 0, "offline status");
  assert.equal(res.stderr, "", describe(res));
  assert.match(
    res.stdout,
    /^audio\/clean\s+clean\nvision\/resnet\s+1 added, 1 modified, 1 deleted\n {2}M edit\.txt\n {2}D gone\.txt\n {2}A new\.txt\n$/,
    describe(res),
  );
  const doc = expectJson(expectCode(await a.run(["status", "--json"]), 0), "modelsync.status/1");
  assert.equal((doc.models as unknown[]).length, 2);

  // --remote needs the datastore: one error line, exit 3 (it is gone).
  expectOneLineError(await a.run(["status", "--remote"]), 3, "status --remote");
});

Deno.test("status --exit-code exits 0 when clean and 10 when anything changed", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.write("models/vpc/m1/a.txt", "a");
  expectCode(await a.run(["push"]), 0);
  expectCode(await a.run(["status", "--exit-code"]), 0, "clean");
  expectCode(await a.run(["status"]), 0, "changes without --exit-code");
  await a.write("models/vpc/m1/a.txt", "changed");
  const changed = expectCode(await a.run(["status", "--exit-code"]), 10, "changed");
  assert.match(changed.stdout, / {2}M a\.txt/, describe(changed));
  assert.equal(changed.stderr, "", describe(changed));

  // With --remote, a datastore that moved on counts as a change too.
  const b = await sb.repo("b");
  expectCode(await b.run(["pull"]), 0);
  expectCode(await b.run(["status", "--remote", "--exit-code"]), 0, "b in sync");
  expectCode(await a.run(["push"]), 0);
  expectCode(await b.run(["status", "--remote", "--exit-code"]), 10, "b behind");
  expectCode(await b.run(["status", "--exit-code"]), 0, "b has no local change");
});
