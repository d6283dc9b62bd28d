/**
 * End-to-end faults on an Azure datastore (Azurite): a wrong account key
 * (exit 6, never echoed), a container that does not exist (exit 3), the
 * emulator going down in the middle of a push (exit 6, local data untouched,
 * a rerun completes once it is back), a commit whose answer was lost (the
 * rerun adopts it), an endpoint that ignores conditional writes (`caps
 * --probe` fails, writes are refused, reads work), and credentials never
 * printed by `caps`, `--json` or `-v`. The emulator's outage, the lost answer
 * and the ignored conditions come from the test proxy in front of Azurite.
 */
import assert from "node:assert/strict";
import {
  describe,
  expectCode,
  expectJson,
  expectOneLineError,
  reportByModel,
  type RunResult,
  snapshot,
  writeModelFiles,
} from "./_helpers.ts";
import {
  AZURE_ENDPOINT,
  AzureSandbox,
  azureTestOptions,
  connectionString,
  DEV_ACCOUNT,
  devAccountSas,
  sasConnectionString,
} from "./_azure.ts";

/** A wrong key of the right shape (64 bytes, base64), distinctive so any echo is caught. */
const WRONG_KEY = btoa("modelsync-wrong-key-for-devstoreaccount1-0123456789abcdefghijklm");

/** Throws when `secret` (or a fragment of it) appears in the run's stdout or stderr. */
function assertNoSecret(res: RunResult, secret: string, what: string): void {
  for (const [stream, text] of [["stdout", res.stdout], ["stderr", res.stderr]]) {
    for (const needle of [secret, secret.slice(8, 24)]) {
      assert.ok(
        !text.includes(needle),
        `${what}: a credential appears on ${stream}\n${describe(res)}`,
      );
    }
  }
}

Deno.test({
  name: "Azure: a wrong account key exits 6 naming the container, and never echoes the key",
  ...azureTestOptions(),
  async fn() {
    await using az = await AzureSandbox.create("e2e-badkey");
    const repo = await az.sb.repo("a");
    await repo.write("models/vpc/m1/a.txt", "local data\n");
    const before = await snapshot(repo.path("models"));
    const env = { AZURE_STORAGE_CONNECTION_STRING: connectionString(az.endpoint, WRONG_KEY) };
    for (
      const args of [
        ["push"],
        ["pull", "-v"],
        ["flush", "--json"],
        ["status", "--remote"],
        ["caps", "--probe", "--json"],
      ]
    ) {
      const res = await repo.run(args, { env });
      const what = `modelsync ${args.join(" ")} with a wrong key`;
      assertNoSecret(res, WRONG_KEY, what);
      const line = args.includes("-v")
        ? expectCode(res, 6, what).stderr.split("\n").filter((l) =>
          l.startsWith("modelsync: error: ")
        ).join("\n")
        : expectOneLineError(res, 6, what);
      assert.ok(line.includes(az.container), `${what}: names the datastore\n${describe(res)}`);
      assert.match(
        line,
        /credentials were refused.*AZURE_STORAGE_CONNECTION_STRING/,
        describe(res),
      );
      if (args.includes("--json")) assert.match(String(res.json().schema), /^modelsync\./);
    }
    assert.deepEqual(await snapshot(repo.path("models")), before, "local data untouched");
    assert.deepEqual(await az.keys("heads/"), [], "nothing committed");
    const dir = await az.sb.dir("fresh");
    const init = await az.sb.run(["init", "--datastore", az.spec], { cwd: dir, env });
    assertNoSecret(init, WRONG_KEY, "init");
    assert.ok(expectOneLineError(init, 6, "init with a wrong key").includes(az.container));
  },
});

Deno.test({
  name: "Azure: a container that does not exist is exit 3 with one line naming it",
  ...azureTestOptions(),
  async fn() {
    await using az = await AzureSandbox.create("e2e-nocontainer");
    const missing = `ms-missing-${crypto.randomUUID().slice(0, 8)}`;
    const spec = `azure://${missing}/team/models`;
    const dir = await az.sb.dir("fresh");
    const init = await az.sb.run(["init", "--datastore", spec], { cwd: dir });
    const line = expectOneLineError(init, 3, "init on a missing container");
    assert.match(line, new RegExp(`container ${missing} does not exist\\. Create it`), line);

    const repo = await az.sb.repo("a");
    await repo.write("models/vpc/m1/a.txt", "x\n");
    for (const args of [["push"], ["pull"], ["caps", "--probe"], ["status", "--remote"]]) {
      const res = await repo.run([...args, "--datastore", spec]);
      const l = expectOneLineError(res, 3, `${args.join(" ")} on a missing container`);
      assert.ok(l.includes(missing), describe(res));
    }
  },
});

Deno.test({
  name:
    "Azure: the emulator goes down in the middle of a push: exit 6, local data untouched, a rerun completes",
  ...azureTestOptions(),
  async fn() {
    await using az = await AzureSandbox.create("e2e-down", { proxy: true });
    const proxy = az.proxy!;
    const a = await az.sb.repo("a", { MODELSYNC_HOLDER: "alice" });
    await a.noPacks(); // a blob per file: the server goes down between blob uploads
    await writeModelFiles(a, "vpc/m1", { count: 12, size: 20_000, seed: 5 });
    await a.write("models/vpc/m2/b.txt", "second model\n");
    const before = await snapshot(a.path("models"));

    // Down once the third blob upload begins (that upload is cut off).
    let blobPuts = 0;
    proxy.onRequest = (r) => {
      if (r.method === "PUT" && r.path.includes("/blobs/") && ++blobPuts === 3) void proxy.pause();
    };
    const deadlines = ["--call-timeout", "1s", "--lock-timeout", "2s", "--timeout", "40s"];
    const res = await a.run(["push", "--json", "--jobs", "1", ...deadlines]);
    proxy.onRequest = undefined;
    assert.equal(proxy.paused, true, `the emulator went down during the push\n${proxy.summary()}`);
    expectCode(res, 6, "push while the emulator is down");
    const errors = res.stderr.split("\n").filter((l) => l.startsWith("modelsync: error: "));
    assert.ok(errors.length >= 1, describe(res));
    for (const line of errors) assert.ok(line.includes(az.container), describe(res));
    const rows = reportByModel(expectJson(res, "modelsync.push/1"));
    assert.deepEqual(
      [rows.get("vpc/m1")?.status, rows.get("vpc/m2")?.status],
      ["failed", "failed"],
    );
    assert.deepEqual(await snapshot(a.path("models")), before, "local data untouched");
    assert.deepEqual(await az.keys("heads/"), [], "nothing committed");

    await proxy.resume();
    // The lock could not be released while the emulator was down; its holder is gone now.
    const leftover = (await az.keys("leases/")).includes("leases/models/vpc/m1");
    const rerun = expectCode(await a.run(["push", "--json"]), 0, "rerun once the emulator is back");
    if (leftover) {
      assert.match(rerun.stderr, /Took over the stale lock on vpc\/m1/, describe(rerun));
    }
    const again = reportByModel(expectJson(rerun, "modelsync.push/1"));
    assert.equal(again.get("vpc/m1")?.status, "pushed", describe(rerun));
    assert.equal(again.get("vpc/m2")?.status, "pushed", describe(rerun));
    assert.deepEqual(await snapshot(a.path("models")), before, "local data still untouched");
    assert.deepEqual(await az.keys("leases/"), [], "no lock left behind");
    const verify = expectJson(
      expectCode(await a.run(["verify", "--read-data", "--json"]), 0, "verify"),
      "modelsync.verify/1",
    );
    assert.deepEqual(verify.problems, []);

    const b = await az.sb.repo("b");
    expectCode(await b.run(["pull"]), 0, "fresh pull");
    assert.deepEqual(await snapshot(b.path("models")), before, "every byte arrives");
  },
});

Deno.test({
  name: "Azure: a commit whose answer is lost: push exits 6, the rerun adopts its own commit",
  ...azureTestOptions(),
  async fn() {
    await using az = await AzureSandbox.create("e2e-lost-answer", { proxy: true });
    const proxy = az.proxy!;
    const a = await az.sb.repo("a");
    await a.write("models/vpc/m1/a.txt", "a\n");
    await a.write("models/vpc/m1/b.txt", "b\n");
    // The first head PUT (the commit point) lands, but the client never sees the answer.
    let lost = 0;
    proxy.loseAnswer = (r, status) =>
      r.method === "PUT" && r.path.includes("/heads/") && status === 201 && lost++ === 0;
    expectCode(await a.run(["push", "--json"]), 6, "push whose commit answer is lost");
    assert.equal(lost, 1, proxy.summary());
    assert.equal((await az.head("vpc/m1"))?.generation, 1, "the commit did land");
    const rerun = expectCode(await a.run(["push", "--json"]), 0, "rerun");
    const row = reportByModel(expectJson(rerun, "modelsync.push/1")).get("vpc/m1");
    assert.equal(row?.generation, 1, `the rerun adopts its own commit\n${describe(rerun)}`);
    assert.equal((await az.head("vpc/m1"))?.generation, 1, "no second commit");
    assert.deepEqual(await az.keys("leases/"), [], "no lock left behind");
  },
});

Deno.test({
  name:
    "Azure endpoint ignoring conditional writes: caps --probe fails, push is refused, pull reads",
  ...azureTestOptions(),
  async fn() {
    // A SAS token signs the URL only, so the proxy can drop If-Match / If-None-Match.
    await using az = await AzureSandbox.create("e2e-nocond", {
      proxy: { stripConditionals: true },
      sas: true,
    });
    const honest = {
      AZURE_STORAGE_CONNECTION_STRING: sasConnectionString(AZURE_ENDPOINT!, devAccountSas()),
    };
    const writer = await az.sb.repo("writer", honest);
    await writer.write("models/vpc/m1/a.txt", "from the honest endpoint\n");
    expectCode(await writer.run(["push"]), 0, "push through the honest endpoint");
    const repo = await az.sb.repo("a");

    const probe = await repo.run(["caps", "--probe", "--json"]);
    const checks = expectJson(probe, "modelsync.caps/1").probe as { name: string; ok: boolean }[];
    const failed = checks.filter((c) => !c.ok).map((c) => c.name);
    const dump = JSON.stringify(checks, null, 2);
    assert.ok(failed.some((n) => /create/i.test(n)), `create-if-absent fails: ${dump}`);
    assert.ok(failed.some((n) => /compare-and-swap/i.test(n)), `compare-and-swap fails: ${dump}`);
    assert.notEqual(probe.code, 0, `caps --probe exits non-zero\n${describe(probe)}`);

    const caps = expectJson(expectCode(await repo.run(["caps", "--json"]), 0), "modelsync.caps/1");
    assert.equal((caps.capabilities as { scopedSync: boolean }).scopedSync, false);
    assert.ok((caps.warnings as string[]).some((w) => /ignores conditional writes/.test(w)));

    const heads = await az.keys("heads/");
    await repo.write("models/vpc/m2/b.txt", "must not be committed\n");
    for (const args of [["push"], ["flush", "--json"]]) {
      const res = await repo.run(args);
      expectCode(res, 6, `${args.join(" ")} on an endpoint ignoring conditions`);
      assert.match(res.stderr, /^modelsync: error: .*conditional writes/m, describe(res));
    }
    assert.deepEqual(await az.keys("heads/"), heads, "nothing committed");
    assert.deepEqual(await az.keys("leases/"), [], "no lock left behind");
    const pull = expectCode(await repo.run(["pull", "--json"]), 0, "pull");
    assert.equal(
      reportByModel(expectJson(pull, "modelsync.pull/1")).get("vpc/m1")?.status,
      "pulled",
    );
    assert.equal(await repo.read("models/vpc/m2/b.txt"), "must not be committed\n");
  },
});

Deno.test({
  name: "Azure: the key and SAS token never appear in caps, --json or -v output",
  ...azureTestOptions(),
  async fn() {
    for (const sas of [false, true]) {
      await using az = await AzureSandbox.create(sas ? "e2e-secrets-sas" : "e2e-secrets", { sas });
      const secret = sas
        ? new URLSearchParams(
          /SharedAccessSignature=(.*)$/.exec(az.sb.env.AZURE_STORAGE_CONNECTION_STRING)![1],
        ).get("sig")!
        : DEV_ACCOUNT.key;
      const repo = await az.sb.repo("a");
      await repo.write("models/vpc/m1/a.txt", "a\n");
      for (
        const args of [
          ["caps", "-v"],
          ["caps", "--probe", "--json", "-v"],
          ["push", "-v", "--json"],
          ["pull", "-v"],
          ["status", "--remote", "-v", "--json"],
          ["lock", "status", "-v", "--json"],
        ]
      ) {
        const res = expectCode(
          await repo.run(args, { env: { AZURE_LOG_LEVEL: "verbose" } }),
          0,
          args.join(" "),
        );
        assertNoSecret(res, secret, `modelsync ${args.join(" ")}`);
      }
      const caps = expectJson(
        expectCode(await repo.run(["caps", "--json"]), 0),
        "modelsync.caps/1",
      );
      assert.equal(caps.provider, "azure");
      assert.ok(String(caps.location).startsWith(`azure://${az.container}/team/models (endpoint `));
      assert.ok(!(await repo.read("modelsync.yaml")).includes(secret.slice(8, 24)));
    }
  },
});

Deno.test({
  name: "Azure with a read-only SAS: pull, log and verify work; push is refused and writes nothing",
  ...azureTestOptions(),
  async fn() {
    await using az = await AzureSandbox.create("e2e-readonly");
    const writer = await az.sb.repo("writer");
    await writer.write("models/vpc/m1/a.txt", "one\n");
    expectCode(await writer.run(["push"]), 0, "the writer pushes");
    const sas = devAccountSas("rl");
    const reader = await az.sb.repo("reader", {
      AZURE_STORAGE_CONNECTION_STRING: sasConnectionString(az.endpoint, sas),
    });
    const pull = expectCode(await reader.run(["pull", "--json"]), 0, "pull, read-only");
    assert.equal(
      reportByModel(expectJson(pull, "modelsync.pull/1")).get("vpc/m1")?.status,
      "pulled",
    );
    expectCode(await reader.run(["log", "vpc/m1"]), 0, "log, read-only");
    expectCode(await reader.run(["verify", "--read-data"]), 0, "verify, read-only");
    const before = await az.keys();
    await reader.write("models/vpc/m1/a.txt", "local edit\n");
    const res = await reader.run(["push"]);
    const line = expectOneLineError(res, 6, "push with a read-only SAS");
    assert.match(line, /refused a write with these credentials/, describe(res));
    assert.ok(line.includes(az.container), describe(res));
    assertNoSecret(res, new URLSearchParams(sas).get("sig")!, "push, read-only");
    assert.deepEqual(await az.keys(), before, "nothing written to the datastore");
    assert.equal(await reader.read("models/vpc/m1/a.txt"), "local edit\n");
  },
});
