/**
 * End-to-end: an S3 endpoint that ignores conditional writes (the test proxy
 * drops If-None-Match / If-Match from writes). `caps --probe` reports the
 * failing checks and exits non-zero, `caps` reports no scopedSync and no
 * atomicCommit, `push` and `flush` are refused with the reason and commit
 * nothing, and `pull --no-lock` still reads.
 */
import assert from "node:assert/strict";
import {
  describe,
  expectCode,
  expectJson,
  Repo,
  reportByModel,
  type RunResult,
  snapshot,
} from "./_helpers.ts";
import { S3_ENDPOINT, S3Sandbox, s3TestOptions } from "./_s3.ts";

interface ProbeCheck {
  name: string;
  capability?: string;
  ok: boolean;
  detail: string;
}

function errorLine(res: RunResult): string {
  const lines = res.stderr.split("\n").filter((l) => l.startsWith("modelsync: error: "));
  assert.equal(lines.length, 1, `one error line\n${describe(res)}`);
  return lines[0];
}

/**
 * A sandbox whose repositories reach the bucket through a proxy that drops
 * conditional headers, and a model committed through the honest endpoint.
 */
async function setUp(hint: string): Promise<{ s3: S3Sandbox; repo: Repo }> {
  const s3 = await S3Sandbox.create(hint, { proxy: { stripConditionals: true } });
  const writer = await s3.sb.repo("writer", { AWS_ENDPOINT_URL_S3: S3_ENDPOINT! });
  await writer.write("models/vpc/m1/a.txt", "from the honest endpoint\n");
  expectCode(await writer.run(["push"]), 0, "push through the honest endpoint");
  return { s3, repo: await s3.sb.repo("a") };
}

Deno.test({
  name:
    "S3 endpoint honouring conditional writes: caps --probe passes every check and leaves nothing",
  ...s3TestOptions(),
  async fn() {
    await using s3 = await S3Sandbox.create("e2e-probe-ok");
    // init names an s3:// location as it is, not as "s3:s3://…".
    const repo = new Repo(s3.sb, await s3.sb.dir("a"), {});
    const init = expectCode(await repo.run(["init", "--datastore", s3.spec]), 0, "init");
    assert.match(
      init.stdout,
      /with datastore s3:\/\/[^ ]+ \(endpoint http:\/\/127\.0\.0\.1:\d+\)\n/,
    );
    assert.doesNotMatch(init.stdout, /s3:s3:/);
    const before = [...(await s3.store.objects()).keys()];
    const res = expectCode(await repo.run(["caps", "--probe", "--json"]), 0, "caps --probe");
    const checks = expectJson(res, "modelsync.caps/1").probe as ProbeCheck[];
    const names = checks.map((c) => c.name);
    for (
      const name of [
        "conditional writes",
        "concurrent create-if-absent",
        "compare-and-swap",
        "conditional delete",
        "list-after-write",
        "store clock",
      ]
    ) assert.ok(names.includes(name), `${name} is probed\n${describe(res)}`);
    assert.ok(checks.every((c) => c.ok), describe(res));
    assert.deepEqual([...(await s3.store.objects()).keys()], before, "the probe cleaned up");
  },
});

Deno.test({
  name:
    "S3 endpoint ignoring conditional writes: caps --probe names the failing checks and exits non-zero",
  ...s3TestOptions(),
  async fn() {
    const { s3, repo } = await setUp("e2e-nocond-probe");
    await using _ = s3;
    const probe = await repo.run(["caps", "--probe", "--json"]);
    const doc = expectJson(probe, "modelsync.caps/1");
    const checks = doc.probe as ProbeCheck[];
    assert.ok(Array.isArray(checks), describe(probe));
    const failed = checks.filter((c) => !c.ok).map((c) => c.name);
    const dump = JSON.stringify(checks, null, 2);
    assert.ok(failed.some((n) => /create/i.test(n)), `create-if-absent fails: ${dump}`);
    assert.ok(failed.some((n) => /compare-and-swap/i.test(n)), `compare-and-swap fails: ${dump}`);
    assert.ok(failed.some((n) => /delete/i.test(n)), `conditional delete fails: ${dump}`);
    assert.ok(checks.some((c) => c.ok && /list-after-write/.test(c.name)), dump);
    const text = await repo.run(["caps", "--probe"]);
    assert.match(text.stdout, /concurrent create-if-absent/, describe(text));
    assert.match(text.stderr, /ignores conditional writes/, describe(text));
    // An operator's health check must not pass on an endpoint modelsync cannot write to.
    assert.notEqual(probe.code, 0, `caps --probe --json exits non-zero\n${describe(probe)}`);
    assert.notEqual(text.code, 0, `caps --probe exits non-zero\n${describe(text)}`);
  },
});

Deno.test({
  name:
    "S3 endpoint ignoring conditional writes: caps says so, push and flush are refused, pull --no-lock reads",
  ...s3TestOptions(),
  async fn() {
    const { s3, repo } = await setUp("e2e-nocond");
    await using _ = s3;
    const caps = expectJson(expectCode(await repo.run(["caps", "--json"]), 0), "modelsync.caps/1");
    const c = caps.capabilities as Record<string, unknown>;
    const dump = JSON.stringify(caps, null, 2);
    assert.equal(c.scopedSync, false, dump);
    assert.equal(c.atomicCommit, false, dump);
    assert.equal(caps.lockPath, "global", dump);
    assert.ok(
      (caps.warnings as string[]).some((w) => /ignores conditional writes/.test(w)),
      `caps --json names the limitation in warnings\n${dump}`,
    );

    const headsBefore = await s3.store.objects("heads/");
    const historyBefore = await s3.store.objects("history/");
    const blobsBefore = await s3.store.keys("blobs/");
    await repo.write("models/vpc/m2/b.txt", "must not be committed\n");
    const local = await snapshot(repo.path("models"));
    for (const args of [["push"], ["push", "--json"], ["flush", "--json"]]) {
      const res = await repo.run(args);
      expectCode(res, 6, `${args.join(" ")} on an endpoint without conditional writes`);
      const line = errorLine(res);
      assert.match(line, /conditional writes/i, describe(res));
      assert.ok(line.includes(s3.bucket), describe(res));
      if (args.includes("--json") && res.stdout.trim() !== "") {
        const rows = reportByModel(res.json());
        assert.notEqual(rows.get("vpc/m2")?.status, "pushed", describe(res));
      }
    }
    assert.deepEqual(await s3.store.objects("heads/"), headsBefore, "nothing committed");
    assert.deepEqual(await s3.store.objects("history/"), historyBefore, "no history written");
    assert.deepEqual(await s3.store.keys("blobs/"), blobsBefore, "no blob uploaded");
    assert.deepEqual(await s3.store.keys("leases/"), [], "no lock left behind");
    assert.deepEqual(await snapshot(repo.path("models")), local, "local files kept");

    // Reading needs no conditional writes.
    const pull = expectCode(await repo.run(["pull", "--no-lock", "--json"]), 0, "pull --no-lock");
    const row = reportByModel(expectJson(pull, "modelsync.pull/1")).get("vpc/m1");
    assert.equal(row?.status, "pulled", describe(pull));
    assert.equal(await repo.read("models/vpc/m1/a.txt"), "from the honest endpoint\n");
    assert.equal(await repo.read("models/vpc/m2/b.txt"), "must not be committed\n");
  },
});
