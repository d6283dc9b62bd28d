/**
 * Messages a new user meets (issue 14 point 9) and `init` / `lock status`
 * (point 8): each reproduced end to end.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  describe,
  expectCode,
  expectJson,
  expectOneLineError,
  HOST,
  Sandbox,
  slowStore,
  waitFor,
  writeModelFiles,
} from "./_helpers.ts";

Deno.test("errors about a --datastore value name the flag, not modelsync.yaml", async () => {
  await using sb = await Sandbox.create();
  const dir = await sb.dir("nowhere");
  const key = expectOneLineError(
    await sb.run(["caps", "--datastore", "s3://models/team?nosuchkey=1"], { cwd: dir }),
    2,
  );
  assert.match(key, /--datastore/, key);
  assert.doesNotMatch(key, /modelsync\.yaml/, key);
  const spec = expectOneLineError(await sb.run(["caps", "--datastore", "s3://"], { cwd: dir }), 2);
  assert.match(spec, /^modelsync: error: Invalid --datastore "s3:\/\/": it names no bucket/, spec);
  const env = expectOneLineError(
    await sb.run(["caps"], { cwd: dir, env: { MODELSYNC_DATASTORE: "s3://" } }),
    2,
  );
  assert.match(env, /Invalid MODELSYNC_DATASTORE/, env);
});

Deno.test("hints never offer a datastore type this version cannot open", async () => {
  await using sb = await Sandbox.create();
  const dir = await sb.dir("nowhere");
  for (const spec of ["ftp:somewhere", "s3://"]) {
    const line = expectOneLineError(await sb.run(["caps", "--datastore", spec], { cwd: dir }), 2);
    assert.doesNotMatch(line, /not available/, line);
  }
  const ftp = expectOneLineError(await sb.run(["caps", "--datastore", "ftp:x"], { cwd: dir }), 2);
  assert.match(ftp, /filesystem, s3, postgres, azure, or type module/, ftp);
});

Deno.test("s3:// specs with . or .. segments or a #fragment are refused", async () => {
  await using sb = await Sandbox.create();
  const dir = await sb.dir("nowhere");
  for (const spec of ["s3://models/a/../b", "s3://models/./b", "s3://models/team#frag"]) {
    const line = expectOneLineError(await sb.run(["caps", "--datastore", spec], { cwd: dir }), 2);
    assert.match(line, /Invalid --datastore/, line);
  }
  // In modelsync.yaml the mapping form is checked too.
  const a = await sb.repo("a");
  await Deno.writeTextFile(
    a.path("modelsync.yaml"),
    `datastore: {type: s3, bucket: models, prefix: "a/../b"}\n`,
  );
  const line = expectOneLineError(await a.run(["caps"]), 2);
  assert.match(line, /prefix.*"\.\."/, line);
});

Deno.test("--timeout 0s is refused", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const line = expectOneLineError(await a.run(["push", "--timeout", "0s"]), 2);
  assert.match(line, /--timeout "0s": it must be longer than 0s/, line);
});

Deno.test("a corrupt lock record is called corrupt", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.write("models/vpc/m1/a.txt", "a");
  await Deno.mkdir(sb.datastore.lockPath("vpc/m1").replace(/\/[^/]+$/, ""), { recursive: true });
  await Deno.writeTextFile(sb.datastore.lockPath("vpc/m1"), "{not json");
  const status = expectCode(await a.run(["lock", "status"]), 0);
  assert.match(status.stdout, /^vpc\/m1\s+corrupt\s+corrupt record/m, describe(status));
  const doc = expectJson(
    expectCode(await a.run(["lock", "status", "--json"]), 0),
    "modelsync.locks/1",
  );
  assert.equal((doc.locks as { state: string }[])[0].state, "corrupt");
  const wait = await a.run(["--lock-timeout", "500ms", "push"]);
  expectCode(wait, 75);
  assert.match(wait.stderr, /held by a corrupt lock record/, describe(wait));
});

Deno.test("every failure is printed once; singular and plural agree", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  await a.write("models/vpc/m1/c.txt", "a1");
  expectCode(await a.run(["push"]), 0);
  expectCode(await b.run(["pull"]), 0);
  await a.write("models/vpc/m1/c.txt", "a2");
  expectCode(await a.run(["push"]), 0);
  await b.write("models/vpc/m1/c.txt", "b2");
  const res = expectCode(await b.run(["push"]), 4);
  const all = res.stdout + res.stderr;
  assert.equal(all.split("Cannot push vpc/m1").length - 1, 1, describe(res));
  assert.match(res.stdout, /^conflict\s+vpc\/m1/m, describe(res));
  assert.match(res.stdout, /^1 model: 1 conflict/m, describe(res));
  const pulled = expectCode(await b.run(["pull", "--theirs"]), 0);
  assert.match(pulled.stdout, /\b1 file\b/, describe(pulled));
  assert.doesNotMatch(pulled.stdout, /\b1 files\b/, describe(pulled));
});

Deno.test("init adds the data folder and .modelsync/ to .gitignore (and says so); --no-gitignore skips both", async () => {
  await using sb = await Sandbox.create();
  const dir = await sb.dir("one");
  const res = expectCode(await sb.run(["init", "--datastore", sb.datastoreSpec], { cwd: dir }), 0);
  assert.match(res.stdout, /^Added models\/ and \.modelsync\/ to \.gitignore$/m, describe(res));
  assert.equal(await Deno.readTextFile(`${dir}/.gitignore`), "models/\n.modelsync/\n");
  const yaml = await Deno.readTextFile(`${dir}/modelsync.yaml`);
  for (const key of ["dataDir", "exclude", "models", "lockTimeout", "timeout", "jobs", "holder"]) {
    assert.match(yaml, new RegExp(`^# ${key}: `, "m"), yaml);
  }
  // The commented file is a valid config as written.
  expectCode(await sb.run(["config", "show"], { cwd: dir }), 0);

  const two = await sb.dir("two");
  const skip = expectCode(
    await sb.run(["init", "--no-gitignore", "--datastore", sb.datastoreSpec], { cwd: two }),
    0,
  );
  assert.doesNotMatch(skip.stdout, /gitignore/, describe(skip));
  assert.equal(await Deno.stat(`${two}/.gitignore`).then(() => true, () => false), false);
});

Deno.test("lock status: aligned columns, each holder's repository, and why a stale lock is stale", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await writeModelFiles(a, "vpc/m1", { count: 10, size: 256 });
  const old = new Date(Date.now() - 3_600_000).toISOString();
  await Deno.mkdir(sb.datastore.lockPath("vpc/stale").replace(/\/[^/]+$/, ""), {
    recursive: true,
  });
  // A record of an older version: no repo field.
  await Deno.writeTextFile(
    sb.datastore.lockPath("vpc/stale"),
    JSON.stringify({
      key: "vpc/stale",
      holder: "ci",
      host: "build-9",
      pid: 4242,
      operation: "flush",
      acquiredAt: old,
      renewedAt: old,
      ttlMs: 30_000,
      nonce: "n1",
      seq: 0,
    }),
  );
  const slow = slowStore(sb, { head: 4_000 });
  const p = a.spawn(["push", "--jobs", "1", ...slow.args], { env: slow.env });
  await waitFor("the push to hold the lock", async () => {
    if (p.exited) throw new Error(`push ended early\n${describe(await p.done)}`);
    return (await sb.datastore.lock("vpc/m1"))?.pid === p.pid;
  });
  assert.equal((await sb.datastore.lock("vpc/m1"))?.repo, a.dir, "the record names its repository");
  const elsewhere = await sb.dir("elsewhere");
  const res = expectCode(
    await sb.run(["lock", "status", "--datastore", sb.datastoreSpec], { cwd: elsewhere }),
    0,
  );
  p.kill("SIGTERM");
  await p.done;
  const lines = res.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 3, describe(res));
  assert.match(
    lines[0],
    /^LOCK\s+STATE\s+HOLDER\s+PID\s+OPERATION\s+AGE\s+TTL \/ WHY\s+REPOSITORY$/,
  );
  const live = lines.find((l) => l.startsWith("vpc/m1 "))!;
  const stale = lines.find((l) => l.startsWith("vpc/stale "))!;
  assert.match(
    live,
    new RegExp(`live\\s+\\S+@${HOST}\\s+${p.pid}\\s+push\\s.*ttl \\S+ left\\s+${a.dir}$`),
  );
  assert.match(stale, /stale\s+ci@build-9\s+4242\s+flush\s.*stale: expired \d+s ago$/, stale);
  // Columns line up: every row's STATE starts where the header's does.
  const at = lines[0].indexOf("STATE");
  for (const l of lines.slice(1)) assert.match(l.slice(at), /^(live|stale|corrupt)/, l);
});
