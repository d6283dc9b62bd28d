/**
 * End-to-end faults on an S3 datastore: refused credentials (exit 6, never
 * echoed), a bucket that does not exist (exit 3), the server going down in
 * the middle of a push (exit 6, local data untouched, a rerun completes), a
 * commit that landed but whose answer was lost (the rerun adopts it), and
 * credentials never printed by `caps`, `--json` or `-v`.
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
import { S3Sandbox, s3TestOptions } from "./_s3.ts";

/** Distinctive fake credentials, so any echo of them is caught. */
const FAKE = {
  AWS_ACCESS_KEY_ID: "AKIAMSYNCFAKE7Q2XZ9W",
  AWS_SECRET_ACCESS_KEY: "msFakeSecret/Zq8vW3xKp+Lr5T0yNb2Hc9Ud4Ge",
  AWS_SESSION_TOKEN: "msFakeSessionToken+Qw7Er9Ty1Ui3Op5As",
};

/** Throws when any of the fake credentials appears in the run's stdout or stderr. */
function assertNoCredentials(res: RunResult, what: string): void {
  for (const [name, value] of Object.entries(FAKE)) {
    for (const [stream, text] of [["stdout", res.stdout], ["stderr", res.stderr]]) {
      // Also a fragment, in case it was cut or wrapped.
      for (const needle of [value, value.slice(4, 16)]) {
        assert.ok(
          !text.includes(needle),
          `${what}: ${name} appears on ${stream}\n${describe(res)}`,
        );
      }
    }
  }
}

Deno.test({
  name: "S3: refused credentials exit 6 naming the datastore, and never echo the key or secret",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-badcreds", { proxy: true });
    const repo = await s3.sb.repo("a");
    await repo.write("models/vpc/m1/a.txt", "local data\n");
    s3.proxy!.rejectAccessKey = FAKE.AWS_ACCESS_KEY_ID;
    const before = await snapshot(repo.path("models"));

    for (
      const args of [
        ["push"],
        ["pull", "-v"],
        ["flush", "--json"],
        ["status", "--remote"],
        ["caps", "--probe", "--json"],
      ]
    ) {
      const res = await repo.run(args, { env: FAKE });
      const what = `modelsync ${args.join(" ")} with refused credentials`;
      assertNoCredentials(res, what);
      // One error line (with -v, debug lines around it), naming the datastore and the cause.
      const line = args.includes("-v")
        ? expectCode(res, 6, what).stderr.split("\n").filter((l) =>
          l.startsWith("modelsync: error: ")
        ).join("\n")
        : expectOneLineError(res, 6, what);
      assert.ok(
        line.includes(s3.bucket),
        `${what}: the error names the datastore\n${describe(res)}`,
      );
      assert.match(line, /credentials were refused/, `${what}\n${describe(res)}`);
      if (args.includes("--json")) {
        // stdout is one JSON document (a report or modelsync.error/1), checked above for leaks.
        assert.match(String(res.json().schema), /^modelsync\./, describe(res));
      }
    }
    assert.ok(s3.proxy!.requests.some((r) => r.status === 403), s3.proxy!.summary());
    assert.deepEqual(await snapshot(repo.path("models")), before, "local data untouched");
    assert.deepEqual(await s3.store.keys("heads/"), [], "nothing committed");
    // init with refused credentials fails the same way.
    const dir = await s3.sb.dir("fresh");
    const init = await s3.sb.run(["init", "--datastore", s3.spec], { cwd: dir, env: FAKE });
    assertNoCredentials(init, "init");
    const line = expectOneLineError(init, 6, "init with refused credentials");
    assert.ok(line.includes(s3.bucket), describe(init));
  },
});

Deno.test({
  name: "S3: a bucket that does not exist is exit 3 with one line naming the bucket",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-nobucket");
    const missing = `ms-missing-${crypto.randomUUID().slice(0, 8)}`;
    const spec = `s3://${missing}/team/models`;
    const dir = await s3.sb.dir("fresh");
    const init = await s3.sb.run(["init", "--datastore", spec], { cwd: dir });
    const line = expectOneLineError(init, 3, "init on a missing bucket");
    assert.ok(line.includes(missing), describe(init));

    const repo = await s3.sb.repo("a");
    await repo.write("models/vpc/m1/a.txt", "x\n");
    for (const args of [["push"], ["pull"], ["caps", "--probe"], ["status", "--remote"]]) {
      const res = await repo.run([...args, "--datastore", spec]);
      const l = expectOneLineError(res, 3, `${args.join(" ")} on a missing bucket`);
      assert.ok(l.includes(missing), describe(res));
    }
  },
});

Deno.test({
  name:
    "S3: the server goes down in the middle of a push: exit 6, local data untouched, a rerun completes",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-down", { proxy: true });
    const proxy = s3.proxy!;
    const a = await s3.sb.repo("a", { MODELSYNC_HOLDER: "alice" });
    await a.noPacks(); // a blob per file: the test acts on single blobs
    await writeModelFiles(a, "vpc/m1", { count: 12, size: 20_000, seed: 5 });
    await a.write("models/vpc/m2/b.txt", "second model\n");
    const before = await snapshot(a.path("models"));

    // Down once the third blob upload begins (that upload is cut off).
    let blobPuts = 0;
    proxy.onRequest = (r) => {
      if (r.method === "PUT" && r.path.includes("/blobs/") && ++blobPuts === 3) {
        void proxy.pause();
      }
    };
    // Short deadlines so it ends soon: each call, each lock wait (waiting retries transient
    // faults until --lock-timeout), and the whole run as a backstop.
    const deadlines = ["--call-timeout", "1s", "--lock-timeout", "2s", "--timeout", "40s"];
    const res = await a.run(["push", "--json", "--jobs", "1", ...deadlines]);
    proxy.onRequest = undefined;
    assert.equal(proxy.paused, true, `the server went down during the push\n${proxy.summary()}`);
    expectCode(res, 6, "push while the server is down");
    const errors = res.stderr.split("\n").filter((l) => l.startsWith("modelsync: error: "));
    assert.ok(errors.length >= 1, describe(res));
    for (const line of errors) {
      assert.ok(line.includes(s3.bucket), `each error names the datastore\n${describe(res)}`);
    }
    const rows = reportByModel(expectJson(res, "modelsync.push/1"));
    assert.deepEqual([rows.get("vpc/m1")?.status, rows.get("vpc/m2")?.status], [
      "failed",
      "failed",
    ]);
    assert.deepEqual(await snapshot(a.path("models")), before, "local data untouched");
    assert.deepEqual(await s3.store.keys("heads/"), [], "nothing committed");

    await proxy.resume();
    // The lock could not be released while the server was down; its holder is gone now.
    const leftover = (await s3.store.keys("leases/")).includes("leases/models/vpc/m1");
    const rerun = expectCode(await a.run(["push", "--json"]), 0, "rerun after the server is back");
    if (leftover) {
      assert.match(rerun.stderr, /Took over the stale lock on vpc\/m1/, describe(rerun));
    }
    const again = reportByModel(expectJson(rerun, "modelsync.push/1"));
    assert.equal(again.get("vpc/m1")?.status, "pushed", describe(rerun));
    assert.equal(again.get("vpc/m2")?.status, "pushed", describe(rerun));
    assert.deepEqual(await snapshot(a.path("models")), before, "local data still untouched");
    assert.deepEqual(await s3.store.integrityProblems(), []);
    assert.deepEqual(await s3.store.keys("leases/"), [], "no lock left behind");

    const b = await s3.sb.repo("b");
    expectCode(await b.run(["pull"]), 0, "fresh pull");
    assert.deepEqual(await snapshot(b.path("models")), before, "every byte arrives");
  },
});

Deno.test({
  name: "S3: credentials never appear in caps, --json or -v output",
  ...s3TestOptions(),
  async fn() {
    // moto takes any key: these fake credentials work here.
    await using s3 = await S3Sandbox.create("e2e-secrets", { env: FAKE });
    const repo = await s3.sb.repo("a");
    await repo.write("models/vpc/m1/a.txt", "a\n");
    const runs: [string[], number][] = [
      [["caps", "-v"], 0],
      [["caps", "--probe", "--json", "-v"], 0],
      [["push", "-v", "--json"], 0],
      [["pull", "-v"], 0],
      [["status", "--remote", "-v", "--json"], 0],
      [["lock", "status", "-v", "--json"], 0],
    ];
    for (const [args, code] of runs) {
      const res = expectCode(await repo.run(args), code, args.join(" "));
      assertNoCredentials(res, `modelsync ${args.join(" ")}`);
    }
    const capsRun = expectCode(await repo.run(["caps", "--json"]), 0, "caps --json");
    assertNoCredentials(capsRun, "modelsync caps --json");
    const caps = expectJson(capsRun, "modelsync.caps/1");
    assert.equal(caps.provider, "s3");
    assert.ok(
      String(caps.location).includes(`s3://${s3.bucket}/team/models`),
      JSON.stringify(caps),
    );
    // The modelsync.yaml written by init holds no credentials either.
    const yaml = await repo.read("modelsync.yaml");
    assert.ok(!yaml.includes(FAKE.AWS_SECRET_ACCESS_KEY) && !yaml.includes(FAKE.AWS_ACCESS_KEY_ID));
  },
});

Deno.test({
  name:
    "S3: a commit whose answer is lost: push exits 6, the rerun finds its own commit, nothing is doubled",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-lost-answer", { proxy: true });
    const proxy = s3.proxy!;
    const a = await s3.sb.repo("a");
    await a.write("models/vpc/m1/a.txt", "a\n");
    await a.write("models/vpc/m1/b.txt", "b\n");
    // The first head PUT (the commit point) lands on the server, but the client never sees the answer.
    let lost = 0;
    proxy.loseAnswer = (r, status) =>
      r.method === "PUT" && r.path.includes("/heads/") && status === 200 && lost++ === 0;
    const res = await a.run(["push", "--json"]);
    expectCode(res, 6, "push whose commit answer is lost");
    assert.equal(lost, 1, proxy.summary());
    assert.equal((await s3.store.current("vpc/m1"))?.generation, 1, "the commit did land");

    const rerun = expectCode(await a.run(["push", "--json"]), 0, "rerun");
    const row = reportByModel(expectJson(rerun, "modelsync.push/1")).get("vpc/m1");
    assert.equal(row?.generation, 1, `the rerun adopts its own commit\n${describe(rerun)}`);
    assert.equal((await s3.store.current("vpc/m1"))?.generation, 1, "no second commit");
    const st = expectJson(
      expectCode(await a.run(["status", "--remote", "--json"]), 0, "status"),
      "modelsync.status/1",
    );
    const m = (st.models as { local: Record<string, string[]>; remote: { state: string } }[])[0];
    assert.deepEqual(m.remote.state, "same", JSON.stringify(st));
    assert.deepEqual(Object.values(m.local).flat(), [], `clean: ${JSON.stringify(st)}`);
    assert.deepEqual(await s3.store.keys("leases/"), [], "no lock left behind");
  },
});
