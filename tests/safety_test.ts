/**
 * End-to-end bad input: a corrupt manifest with an escaping path, bad model
 * refs, bad configuration, unknown datastore types, missing datastore or
 * repository, bad durations. Each gets one line on stderr, its exit code, and
 * changes nothing.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import {
  describe,
  exists,
  expectCode,
  expectJson,
  expectOneLineError,
  type Repo,
  Sandbox,
  sha256,
  snapshot,
  writeRecordDir,
} from "./_helpers.ts";

/** Everything a failed command must leave alone: the repo's data and the datastore. */
async function state(sb: Sandbox, repo: Repo): Promise<Record<string, unknown>> {
  return {
    models: await snapshot(repo.path("models")),
    base: await snapshot(repo.path(".modelsync/base")),
    config: await repo.read("modelsync.yaml"),
    // Taking and releasing a lock may leave empty directories under locks/: not a change.
    datastore: Object.fromEntries(
      Object.entries(await snapshot(sb.datastore.dir)).filter(([p, v]) =>
        !(v === "dir" && p.startsWith("locks"))
      ),
    ),
  };
}

Deno.test("a manifest with a ../ path is refused as corrupt and nothing is written", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("r");
  await repo.write("models/vpc/m1/mine.txt", "local file of m1\n");

  // Plant the evil blob (so only the path is wrong) and the manifest.
  const evil = new TextEncoder().encode("evil content\n");
  const hash = sha256(evil);
  await Deno.mkdir(dirname(sb.datastore.blobPath(hash)), { recursive: true });
  await Deno.writeFile(sb.datastore.blobPath(hash), evil);
  await writeRecordDir(
    sb.datastore.headDir("vpc/m1"),
    JSON.stringify({
      format: 2,
      model: "vpc/m1",
      generation: 1,
      commit: "0123456789abcdef",
      parent: null,
      files: [{ path: "../../evil", sha256: hash, size: evil.length, executable: false }],
      committedBy: { holder: "mallory", host: "elsewhere", pid: 4242 },
      committedAt: new Date().toISOString(),
    }),
  );
  const before = await state(sb, repo);

  for (const args of [["pull", "vpc/m1"], ["pull"], ["pull", "--theirs", "vpc/m1"]]) {
    const res = await repo.run(args);
    const line = expectOneLineError(res, 6, args.join(" "));
    assert.match(line, /refusing it as corrupt/, describe(res));
    assert.match(line, /vpc\/m1/, describe(res));
    assert.deepEqual(await state(sb, repo), before, `${args.join(" ")} changed nothing`);
  }
  // "../../evil" from models/vpc/m1 would land at models/evil; check around it too.
  for (const p of ["models/evil", "evil", "../evil", "models/vpc/evil"]) {
    assert.equal(await exists(repo.path(p)), false, `${p} must not exist`);
  }
  assert.equal(await exists(join(sb.root, "evil")), false);
});

Deno.test("bad model refs are usage errors on push, pull and status", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("r");
  await repo.write("models/vpc/m1/a.txt", "pending change\n");
  const before = await state(sb, repo);
  for (const ref of ["../x", "a/b/c/d", "", "vpc/mödel", "vpc/../m1", "/vpc/m1"]) {
    for (const cmd of ["push", "pull", "status"]) {
      const res = await repo.run([cmd, ref]);
      const line = expectOneLineError(res, 2, `${cmd} ${JSON.stringify(ref)}`);
      if (ref !== "") assert.ok(line.includes(ref), `the error names ${ref}: ${line}`);
    }
  }
  assert.deepEqual(await state(sb, repo), before, "bad refs changed nothing");
  assert.equal((await sb.datastore.manifests()).length, 0);
});

Deno.test("malformed YAML and unknown config keys are usage errors naming the problem", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("r");
  const good = await repo.read("modelsync.yaml");
  await repo.write("models/vpc/m1/a.txt", "pending\n");

  await repo.write("modelsync.yaml", "datastore: [unclosed\n  dataDir: {\n");
  for (const cmd of ["status", "push", "pull"]) {
    expectOneLineError(await repo.run([cmd]), 2, `${cmd} with malformed YAML`);
  }

  await repo.write("modelsync.yaml", `${good}\nbogusKey: 1\n`);
  for (const cmd of ["status", "push"]) {
    const res = await repo.run([cmd]);
    const line = expectOneLineError(res, 2, `${cmd} with an unknown key`);
    assert.match(line, /bogusKey/, describe(res));
  }
  assert.equal((await sb.datastore.manifests()).length, 0, "nothing was pushed");
});

Deno.test("unknown datastore types are usage errors; a missing datastore or repository is not found", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("r");
  const good = await repo.read("modelsync.yaml");
  await repo.write("models/vpc/m1/a.txt", "pending\n");

  const ftp = await repo.run(["pull", "--datastore", "ftp:/x"]);
  assert.match(expectOneLineError(ftp, 2, "--datastore ftp:/x"), /ftp/);
  const ftpEnv = await repo.run(["push"], { env: { MODELSYNC_DATASTORE: "ftp:/x" } });
  expectOneLineError(ftpEnv, 2, "MODELSYNC_DATASTORE=ftp:/x");

  const withoutDatastore = good.split("\n").filter((l) => !/^datastore:/.test(l)).join("\n");
  await repo.write("modelsync.yaml", `${withoutDatastore}\ndatastore:\n  type: ftp\n`);
  const ftpFile = await repo.run(["pull"]);
  assert.match(expectOneLineError(ftpFile, 2, "datastore: {type: ftp}"), /ftp/);
  await repo.write("modelsync.yaml", good);

  const missing = join(sb.root, "no-such-datastore");
  for (const spec of [missing, `filesystem:${missing}`]) {
    const res = await repo.run(["pull", "--datastore", spec]);
    assert.match(expectOneLineError(res, 3, `--datastore ${spec}`), /no-such-datastore/);
    assert.equal(await exists(missing), false, "pull does not create the datastore");
  }
  const pushMissing = await repo.run(["push", "--datastore", missing]);
  expectOneLineError(pushMissing, 3, "push to a missing datastore");
  assert.equal(await exists(missing), false, "push does not create the datastore");

  // No repository: an empty directory with no modelsync.yaml above it.
  const empty = await sb.dir("empty");
  let d = empty;
  while (dirname(d) !== d) {
    d = dirname(d);
    if (await exists(join(d, "modelsync.yaml"))) {
      throw new Error(`cannot test "no repository": ${d} holds a modelsync.yaml`);
    }
  }
  for (const cmd of ["status", "pull", "push"]) {
    const res = await sb.run([cmd], { cwd: empty });
    expectOneLineError(res, 3, `${cmd} outside a repository`);
  }
  assert.deepEqual(await snapshot(empty), {}, "nothing created outside a repository");
  const viaFlag = await sb.run(["status", "--repo", join(sb.root, "nope")], { cwd: empty });
  expectOneLineError(viaFlag, 3, "--repo pointing nowhere");
  // --json promises one JSON document on stdout, also for a failed command.
  const json = await sb.run(["status", "--json"], { cwd: empty });
  expectOneLineError(json, 3, "status --json outside a repository");
  const doc = expectJson(json, "modelsync.error/1") as {
    error: { code: string; exitCode: number; message: string };
  };
  assert.equal(doc.error.code, "not-found");
  assert.equal(doc.error.exitCode, 3);
  assert.match(doc.error.message, /modelsync init/);
});

Deno.test("bad durations and numbers are usage errors", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("r");
  await repo.write("models/vpc/m1/a.txt", "pending\n");
  const before = await state(sb, repo);
  const cases: [string[], Record<string, string>][] = [
    [["push", "--lock-timeout", "abc"], {}],
    [["pull", "--lock-timeout", "abc"], {}],
    [["push"], { MODELSYNC_LOCK_TIMEOUT: "abc" }],
    [["push", "--timeout", "soon"], {}],
    [["push", "--jobs", "zero"], {}],
  ];
  for (const [args, env] of cases) {
    const res = await repo.run(args, { env });
    expectOneLineError(res, 2, `${args.join(" ")} ${JSON.stringify(env)}`);
  }
  const lt = await repo.run(["push", "--lock-timeout", "abc"]);
  assert.match(lt.stderr, /abc/, describe(lt));
  assert.match(lt.stderr, /lock-timeout/, describe(lt));
  assert.deepEqual(await state(sb, repo), before);
});

Deno.test("an unknown command or option is a usage error", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("r");
  expectCode(await repo.run(["frobnicate"]), 2, "unknown command");
  expectCode(await repo.run(["push", "--no-such-flag"]), 2, "unknown option");
  const both = await repo.run(["pull", "--ours", "--theirs"]);
  expectOneLineError(both, 2, "--ours with --theirs");
});

Deno.test("a blob whose content does not match its hash is refused on pull; nothing lands", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: the test acts on single blobs
  const b = await sb.repo("b");
  await a.write("models/vpc/m1/good.txt", "good content\n");
  await a.write("models/vpc/m1/victim.txt", "the real content\n");
  expectCode(await a.run(["push"]), 0);
  // Corrupt one blob in place: same size, other bytes.
  const victim = sb.datastore.blobPath(sha256("the real content\n"));
  await Deno.chmod(victim, 0o644).catch(() => {});
  await Deno.writeTextFile(victim, "THE FAKE CONTENT\n");
  await b.write("models/vpc/m1/local.txt", "b's own\n");
  const before = await snapshot(b.path("models"));

  const res = await b.run(["pull"]);
  const line = expectOneLineError(res, 6, "pull of a corrupt blob");
  assert.match(line, /vpc\/m1|victim\.txt|[0-9a-f]{64}/, describe(res));
  assert.deepEqual(await snapshot(b.path("models")), before, "nothing landed");
  assert.equal(await exists(b.path("models/vpc/m1/victim.txt")), false);

  // The remedy the message gives works: delete the blob, push again from a good copy.
  assert.match(line, /Delete that blob from the datastore, then push the model again/);
  await Deno.remove(victim);
  const repush = await a.run(["push", "--json", "vpc/m1"]);
  expectCode(repush, 0, "a pushes again");
  assert.equal(await Deno.readTextFile(victim), "the real content\n", "the blob was stored again");
  expectCode(await b.run(["pull"]), 0, "b's pull now completes");
  assert.equal(await b.read("models/vpc/m1/victim.txt"), "the real content\n");
});

Deno.test("a datastore that fails every write: push exits 6, flush of all models exits 6", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.write("models/vpc/m1/f.txt", "one\n");
  await a.write("models/vpc/m2/f.txt", "two\n");
  const before = await snapshot(a.path("models"));
  // blobs/ is a plain file: every blob write fails.
  await Deno.remove(join(sb.datastore.dir, "blobs"), { recursive: true }).catch(() => {});
  await Deno.writeTextFile(join(sb.datastore.dir, "blobs"), "not a directory\n");

  const push = await a.run(["push", "vpc/m1"]);
  expectOneLineError(push, 6, "push to a failing datastore");
  const flush = await a.run(["flush", "--json"]);
  expectCode(flush, 6, "flush to a failing datastore");
  const doc = flush.json();
  assert.equal(doc.schema, "modelsync.flush/1");
  for (const m of (doc.models as { status: string }[])) assert.equal(m.status, "failed");
  assert.equal((await sb.datastore.manifests()).length, 0, "nothing committed");
  assert.deepEqual(await snapshot(a.path("models")), before, "local data untouched");
  const locks = await a.run(["lock", "status", "--json"]);
  assert.deepEqual(expectCode(locks, 0).json().locks, [], "no lock left behind");
});

Deno.test("corrupt lock record, base file and datastore marker: clear errors, nothing lost", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("r");
  await repo.write("models/vpc/m1/a.txt", "v1\n");
  expectCode(await repo.run(["push"]), 0);
  await repo.write("models/vpc/m1/a.txt", "v2, not pushed yet\n");

  // A garbled lock record blocks (it may be a live writer), names itself, and can be force-released.
  await writeRecordDir(sb.datastore.lockPath("vpc/m1"), "garbage{");
  const blocked = await repo.run(["push", "--lock-timeout", "1s"]);
  expectCode(blocked, 75, "push behind a garbled lock record");
  assert.match(blocked.stderr, /^modelsync: error: .*vpc\/m1/m, describe(blocked));
  const rel = expectCode(
    await repo.run(["lock", "release", "--force", "--json", "vpc/m1"]),
    0,
    "force release of a garbled lock record",
  );
  assert.deepEqual(rel.json().released, ["vpc/m1"], describe(rel));
  assert.equal(await sb.datastore.lock("vpc/m1"), null);
  expectCode(await repo.run(["push"]), 0, "push after the release");
  assert.equal((await sb.datastore.current("vpc/m1"))?.generation, 2);

  // A corrupt base file: one line naming it, nothing changed.
  await repo.write("models/vpc/m1/a.txt", "v3, not pushed yet\n");
  const baseFile = repo.path(".modelsync/base/vpc/m1.json");
  assert.ok(await exists(baseFile), "the base lives in .modelsync/base/TYPE/ID.json");
  await Deno.writeTextFile(baseFile, "{not json");
  const before = await state(sb, repo);
  for (const cmd of ["status", "push", "pull"]) {
    const res = await repo.run([cmd]);
    assert.ok(
      res.code !== 0 && res.code !== 1,
      `${cmd}: a deliberate error code\n${describe(res)}`,
    );
    const lines = res.stderr.split("\n").filter((l) => l.trim() !== "");
    assert.equal(lines.length, 1, describe(res));
    assert.match(lines[0], /^modelsync: error: .*base/, describe(res));
    assert.deepEqual(await state(sb, repo), before, `${cmd} changed nothing`);
  }
  await Deno.remove(baseFile);

  // A corrupt datastore marker: the datastore is failing (exit 6).
  await writeRecordDir(join(sb.datastore.dir, "config"), "nope");
  const marker = await repo.run(["pull"]);
  assert.match(expectOneLineError(marker, 6, "corrupt marker"), /datastore marker/);
  assert.equal(await repo.read("models/vpc/m1/a.txt"), "v3, not pushed yet\n");
});

Deno.test("init is safe to repeat and does not clobber an existing datastore", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.write("models/vpc/m1/a.txt", "a\n");
  expectCode(await a.run(["push"]), 0);
  const ds = await snapshot(sb.datastore.dir);
  const b = await sb.repo("b");
  expectCode(await b.run(["init", "--datastore", sb.datastoreSpec]), 0, "init again");
  assert.deepEqual(await snapshot(sb.datastore.dir), ds, "the datastore is unchanged");
  expectCode(await b.run(["pull"]), 0);
  assert.equal(await b.read("models/vpc/m1/a.txt"), "a\n");
  // A repeated init puts the data folder and .modelsync/ back into a .gitignore that lost them.
  await b.write(".gitignore", "node_modules/\n");
  expectCode(await b.run(["init"]), 0, "init without --datastore in an existing repository");
  assert.deepEqual((await b.read(".gitignore")).split("\n").filter((l) => l !== ""), [
    "node_modules/",
    "models/",
    ".modelsync/",
  ]);
});

Deno.test("no repository inside another's data folder; nested modelsync state is never synced; lock needs a subcommand", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.write("models/vpc/m1/f.txt", "f\n");
  const inner = a.path("models/vpc/m1");
  const init = await sb.run(["--repo", inner, "init", "--datastore", join(sb.root, "other")], {
    cwd: sb.root,
  });
  const line = expectOneLineError(init, 2, "init inside a data folder");
  assert.match(line, /inside the data folder of the repository/);
  assert.equal(await exists(join(inner, "modelsync.yaml")), false, "nothing written");
  // Also when the path reaches the data folder through a symlink.
  await Deno.symlink(a.path("models/vpc"), join(sb.root, "link"));
  const viaLink = await sb.run([
    "--repo",
    join(sb.root, "link", "m2"),
    "init",
    "--datastore",
    join(sb.root, "other"),
  ], {
    cwd: sb.root,
  });
  expectOneLineError(viaLink, 2, "init through a symlink into a data folder");
  assert.equal(await exists(a.path("models/vpc/m2")), false, "nothing created");

  // State of a repository that got there anyway is skipped, never pushed.
  await a.write("models/vpc/m1/.modelsync/base/x/y.json", "{}\n");
  const push = expectCode(await a.run(["push", "--json"]), 0, "push");
  assert.match(push.stderr, /\.modelsync \(modelsync state, never synced\)/);
  const m = await sb.datastore.current("vpc/m1");
  assert.deepEqual(m?.files.map((f) => f.path), ["f.txt"]);

  const lock = await a.run(["--json", "lock"]);
  expectOneLineError(lock, 2, "lock without a subcommand");
  expectJson(lock, "modelsync.error/1");
});
