/**
 * End-to-end tests of the command line a user meets first: help, quiet and
 * verbose output, config show, versions, the whole-run deadline from
 * modelsync.yaml and SIGHUP (issue 14; issue 8 point 8 for SIGHUP).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  describe,
  expectCode,
  expectJson,
  expectOneLineError,
  reportByModel,
  ROOT,
  Sandbox,
  slowStore,
  waitFor,
  writeModelFiles,
} from "./_helpers.ts";

const nonEmptyLines = (s: string) => s.split("\n").filter((l) => l.trim() !== "");

Deno.test("help: flush --help lists --json and --timeout with their env variable and yaml key", async () => {
  await using sb = await Sandbox.create();
  const dir = await sb.dir("nowhere");
  const res = expectCode(await sb.run(["flush", "--help"], { cwd: dir }), 0);
  assert.match(res.stdout, /--json\b.*MODELSYNC_JSON/s, describe(res));
  assert.match(res.stdout, /--timeout <dur>.*MODELSYNC_TIMEOUT.*modelsync\.yaml: timeout/s);
  assert.match(res.stdout, /Examples:\n\s+\$ modelsync flush/, describe(res));
  assert.match(res.stdout, /Exit codes: 0 ok/, describe(res));
});

Deno.test("help: no command prints the help on stderr and exits 2", async () => {
  await using sb = await Sandbox.create();
  const dir = await sb.dir("nowhere");
  const res = expectCode(await sb.run([], { cwd: dir }), 2);
  assert.equal(res.stdout, "");
  assert.match(res.stderr, /Usage: modelsync/, describe(res));
  assert.match(res.stderr, /push/, describe(res));
});

Deno.test("help: a mistyped command is one error line that keeps the suggestion", async () => {
  await using sb = await Sandbox.create();
  const dir = await sb.dir("nowhere");
  const line = expectOneLineError(await sb.run(["psuh"], { cwd: dir }), 2);
  assert.match(line, /unknown command 'psuh'.*Did you mean push\?/, line);
});

Deno.test("caps: a capability that is off reads as off, not as a statement that it holds", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const res = expectCode(await a.run(["--disable-cap", "scopedSync", "caps"]), 0);
  const line = res.stdout.split("\n").find((l) => l.trimStart().startsWith("scopedSync"));
  assert.ok(line !== undefined, describe(res));
  assert.match(line, /\bno\b/, line);
  assert.doesNotMatch(line, /per-model locks and commits are safe;/, line);
});

Deno.test("-q push prints nothing on stdout or stderr, and pushes", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await writeModelFiles(a, "vpc/m1", { count: 3, size: 100 });
  const res = expectCode(await a.run(["-q", "push"]), 0);
  assert.equal(res.stdout, "", describe(res));
  assert.equal(res.stderr, "", describe(res));
  assert.equal((await sb.datastore.current("vpc/m1"))?.files.length, 3);
  // --json still prints its document.
  const json = expectJson(expectCode(await a.run(["-q", "push", "--json"]), 0), "modelsync.push/1");
  assert.equal(reportByModel(json).get("vpc/m1")?.status, "unchanged");
});

Deno.test("a no-op push of 50 models prints one summary line (rows with -v)", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  for (let i = 0; i < 50; i++) {
    await a.write(`models/team/m${String(i).padStart(2, "0")}/w.txt`, `model ${i}`);
  }
  expectCode(await a.run(["push"]), 0, "first push");
  const res = expectCode(await a.run(["push"]), 0, "no-op push");
  assert.deepEqual(nonEmptyLines(res.stdout), ["50 models: 50 unchanged (lock path scoped)"]);
  assert.equal(res.stderr, "", describe(res));
  const flush = expectCode(await a.run(["flush"]), 0, "no-op flush");
  assert.equal(nonEmptyLines(flush.stdout).length, 1, describe(flush));
  const verbose = expectCode(await a.run(["-v", "push"]), 0, "no-op push -v");
  assert.equal(nonEmptyLines(verbose.stdout).length, 51, describe(verbose));
  // -v names what was asked of the datastore, one line per request kind.
  // The heads are listed once; the other requests read and check the datastore marker.
  assert.match(verbose.stderr, /datastore requests: listRecords 1\n/, describe(verbose));
});

Deno.test("push rows count the model's files and the blobs uploaded apart", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  // 5 files, 2 distinct contents.
  for (let i = 0; i < 5; i++) {
    await a.write(`models/vpc/m1/f${i}.txt`, i % 2 === 0 ? "even" : "odd");
  }
  const res = expectCode(await a.run(["push", "--json"]), 0);
  const row = reportByModel(expectJson(res, "modelsync.push/1")).get("vpc/m1") as unknown as {
    files: number;
    uploaded: number;
    bytes: number;
  };
  assert.equal(row.files, 5, "files in the committed model");
  assert.equal(row.uploaded, 2, "distinct blobs uploaded");
  assert.equal(row.bytes, 7, "bytes uploaded");
  await a.write("models/vpc/m2/one.txt", "1");
  const text = expectCode(await a.run(["push"]), 0);
  assert.match(
    text.stdout,
    /vpc\/m2\s+generation 1\s+1 file\s+1 blob uploaded \(1 B\)/,
    describe(text),
  );
});

Deno.test("config show names the source of each setting: flag, environment, file, default", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await Deno.writeTextFile(a.path("modelsync.yaml"), "jobs: 3\nmodels: [vision/*]\n", {
    append: true,
  });
  const res = expectCode(
    await a.run(["--holder", "ci-7", "config", "show"], { env: { MODELSYNC_LOCK_TIMEOUT: "5s" } }),
    0,
  );
  const row = (name: string) => res.stdout.split("\n").find((l) => l.startsWith(`${name} `));
  assert.match(row("holder") ?? "", /^holder\s+ci-7\s+flag \(--holder\)$/, describe(res));
  assert.match(
    row("lockTimeout") ?? "",
    /^lockTimeout\s+5s\s+environment \(MODELSYNC_LOCK_TIMEOUT\)$/,
    describe(res),
  );
  assert.match(row("jobs") ?? "", /^jobs\s+3\s+modelsync\.yaml \(jobs\)$/, describe(res));
  assert.match(row("models") ?? "", /^models\s+vision\/\*\s+modelsync\.yaml/, describe(res));
  assert.match(row("callTimeout") ?? "", /^callTimeout\s+30s\s+default$/, describe(res));
  assert.match(row("datastore") ?? "", /filesystem:.*modelsync\.yaml \(datastore\)$/);
  const doc = expectJson(
    expectCode(await a.run(["config", "show", "--json"]), 0),
    "modelsync.config/1",
  );
  const jobs = (doc.settings as { name: string; source: string }[]).find((s) => s.name === "jobs");
  assert.equal(jobs?.source, "file");
});

Deno.test("version and --version print modelsync's version from deno.json, Deno's and the format", async () => {
  await using sb = await Sandbox.create();
  const dir = await sb.dir("nowhere");
  const { version } = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  for (const args of [["--version"], ["version"]]) {
    const res = expectCode(await sb.run(args, { cwd: dir }), 0);
    assert.match(res.stdout, new RegExp(`^modelsync ${version.replace(/\./g, "\\.")}\n`));
    assert.match(res.stdout, new RegExp(`deno ${Deno.version.deno.replace(/\./g, "\\.")}`));
    assert.match(res.stdout, /datastore format 2/, describe(res));
  }
});

Deno.test("timeout: 1s in modelsync.yaml stops a slow push (exit 130, no lock left)", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: ten slow uploads
  await writeModelFiles(a, "vpc/m1", { count: 10, size: 256 });
  await Deno.writeTextFile(a.path("modelsync.yaml"), "timeout: 1s\n", { append: true });
  const slow = slowStore(sb, { putBlob: 400 });
  const res = await a.run(["push", "--jobs", "1", ...slow.args], { env: slow.env });
  expectCode(res, 130, "push past the file's deadline");
  assert.match(res.stderr, /Stopped after 1s \(timeout: in modelsync\.yaml\)/, describe(res));
  assert.equal(await sb.datastore.lock("vpc/m1"), null, "no datastore lock left");
  assert.equal(await sb.datastore.current("vpc/m1"), null, "nothing committed");
  assert.equal(await a.has(".modelsync/repo.lock"), false, "no repository lock left");
});

Deno.test("SIGHUP is handled like SIGTERM: locks released, one JSON document, exit 130", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await writeModelFiles(a, "vpc/m1", { count: 10, size: 512 });
  // Holds the lock 4 s before it reads the head.
  const slow = slowStore(sb, { head: 4_000 });
  const p = a.spawn(["push", "--json", "--jobs", "1", ...slow.args], { env: slow.env });
  await waitFor("the push to hold the lock", async () => {
    if (p.exited) throw new Error(`push ended early\n${describe(await p.done)}`);
    return (await sb.datastore.lock("vpc/m1"))?.pid === p.pid;
  });
  p.kill("SIGHUP");
  const res = await p.done;
  expectCode(res, 130, "push after SIGHUP");
  assert.equal(res.signal, null, "it exited by itself, not killed by the signal");
  const doc = expectJson(res, "modelsync.push/1");
  assert.equal(reportByModel(doc).get("vpc/m1")?.status, "interrupted");
  assert.match(res.stderr, /Interrupted by SIGHUP/, describe(res));
  assert.equal(await sb.datastore.lock("vpc/m1"), null, "the datastore lock was released");
  assert.equal(await a.has(".modelsync/repo.lock"), false, "the repository lock was released");
  assert.equal(await sb.datastore.current("vpc/m1"), null, "nothing committed");
});
