/**
 * End-to-end: a large file goes to Azure as blocks staged in parallel, and
 * becomes a blob with one Put Block List sent only after every block was
 * stored; another repository pulls it byte for byte. Watched through the
 * test proxy in front of Azurite.
 */
import assert from "node:assert/strict";
import { describe, expectCode, expectJson, pseudoRandomBytes, reportByModel } from "./_helpers.ts";
import { AzureSandbox, azureTestOptions } from "./_azure.ts";

const MiB = 1024 * 1024;

Deno.test({
  name: "Azure: a 40 MiB file goes up as parallel blocks, committed once they are all stored",
  ...azureTestOptions(),
  async fn() {
    await using az = await AzureSandbox.create("e2e-blocks", { proxy: true });
    const proxy = az.proxy!;
    const a = await az.sb.repo("a");
    const big = pseudoRandomBytes(40 * MiB + 12_345, 7);
    await a.write("models/vision/big/weights.bin", big);

    let most = 0;
    let pendingAtCommit = -1;
    proxy.onRequest = (r) => {
      const blocks = proxy.requests.filter((q) => q.query.includes("comp=block&"));
      if (r.query.includes("comp=block&")) {
        most = Math.max(most, blocks.filter((q) => q.status === 0).length);
      }
      if (r.query.includes("comp=blocklist")) {
        pendingAtCommit = blocks.filter((q) => q.status !== 201).length;
      }
    };
    const push = expectCode(await a.run(["push", "--json"]), 0, "push");
    proxy.onRequest = undefined;
    const row = reportByModel(expectJson(push, "modelsync.push/1")).get("vision/big");
    assert.equal(row?.status, "pushed", describe(push));
    const staged = proxy.requests.filter((q) => q.query.includes("comp=block&"));
    const commits = proxy.requests.filter((q) => q.query.includes("comp=blocklist"));
    assert.equal(staged.length, 6, `41 MiB in 8 MiB blocks\n${proxy.summary()}`);
    assert.equal(commits.length, 1, proxy.summary());
    assert.ok(most >= 2 && most <= 4, `blocks in flight at once: ${most}\n${proxy.summary()}`);
    assert.equal(pendingAtCommit, 0, "Put Block List only after every block was stored");

    const b = await az.sb.repo("b");
    expectCode(await b.run(["pull"]), 0, "pull");
    assert.deepEqual(await b.readBytes("models/vision/big/weights.bin"), big);
  },
});
