/**
 * End-to-end: read-only S3 credentials (the test proxy answers 403
 * AccessDenied to every write signed with one access key). Pull takes no
 * lock, so it works; push, flush and lock release are refused with the
 * store's reason and write nothing; status --remote, log and verify read.
 */
import assert from "node:assert/strict";
import {
  describe,
  expectCode,
  expectJson,
  expectOneLineError,
  reportByModel,
  snapshot,
} from "./_helpers.ts";
import { S3Sandbox, s3TestOptions } from "./_s3.ts";

const READER = {
  AWS_ACCESS_KEY_ID: "AKIAMSYNCREADONLY001",
  AWS_SECRET_ACCESS_KEY: "msReadOnlySecret/Zq8vW3xKp",
};

Deno.test({
  name:
    "S3 with read-only credentials: pull, status --remote, log and verify work; push and flush are refused and write nothing",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-readonly", { proxy: true });
    s3.proxy!.readOnlyAccessKey = READER.AWS_ACCESS_KEY_ID;
    const writer = await s3.sb.repo("writer");
    await writer.write("models/vpc/m1/a.txt", "one\n");
    expectCode(await writer.run(["push"]), 0, "the writer pushes");
    await writer.write("models/vpc/m1/a.txt", "two\n");
    expectCode(await writer.run(["push"]), 0, "the writer pushes again");

    const reader = await s3.sb.repo("reader", READER);
    const pull = expectCode(await reader.run(["pull", "--json"]), 0, "pull, read-only");
    assert.equal(
      reportByModel(expectJson(pull, "modelsync.pull/1")).get("vpc/m1")?.status,
      "pulled",
    );
    assert.equal(await reader.read("models/vpc/m1/a.txt"), "two\n");
    expectCode(await reader.run(["status", "--remote"]), 0, "status --remote, read-only");
    const log = expectJson(
      expectCode(await reader.run(["log", "vpc/m1", "--json"]), 0, "log, read-only"),
      "modelsync.log/1",
    );
    assert.equal((log.generations as unknown[]).length, 2);
    expectCode(await reader.run(["verify", "--read-data"]), 0, "verify, read-only");
    const caps = expectJson(
      expectCode(await reader.run(["caps", "--json"]), 0),
      "modelsync.caps/1",
    );
    assert.ok(
      (caps.warnings as string[]).some((w) => /refused a write with these credentials/.test(w)),
      `caps names the limitation\n${JSON.stringify(caps)}`,
    );

    const before = await s3.store.objects();
    await reader.write("models/vpc/m1/a.txt", "local edit\n");
    await reader.write("models/vpc/m2/b.txt", "new model\n");
    const local = await snapshot(reader.path("models"));
    for (const args of [["push"], ["flush"]]) {
      const res = await reader.run(args);
      const line = expectOneLineError(res, 6, `${args[0]} with read-only credentials`);
      assert.match(line, /refused a write with these credentials/, describe(res));
      assert.match(line, /credentials that may write/, describe(res));
      assert.ok(line.includes(s3.bucket), describe(res));
      assert.ok(!(res.stdout + res.stderr).includes(READER.AWS_SECRET_ACCESS_KEY), "no secret");
    }
    assert.deepEqual(await s3.store.objects(), before, "nothing written to the datastore");
    assert.deepEqual(await snapshot(reader.path("models")), local, "local files kept");
  },
});
