/**
 * End-to-end sync behaviour: init, push, pull round trips, tombstones,
 * three-way pulls and conflicts, status, symlinks, excludes, and the
 * shape of every `--json` document.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  describe,
  exists,
  expectCode,
  expectJson,
  expectOneLineError,
  listFiles,
  pseudoRandomBytes,
  type Repo,
  reportByModel,
  Sandbox,
  sha256,
} from "./_helpers.ts";

/** Puts the same first version of vpc/m1 in both repos (a pushes, b pulls). */
async function sharedBase(sb: Sandbox): Promise<{ a: Repo; b: Repo }> {
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  await a.write("models/vpc/m1/x.txt", "x version one\n");
  await a.write("models/vpc/m1/y.txt", "y version one\n");
  await a.write("models/vpc/m1/z.txt", "z version one\n");
  expectCode(await a.run(["push"]), 0, "first push");
  expectCode(await b.run(["pull"]), 0, "first pull");
  return { a, b };
}

Deno.test("push then pull round-trips nested dirs, the x bit, an empty file, a unicode name and a 3 MB file", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  const big = pseudoRandomBytes(3 * 1024 * 1024, 7);
  const files: Record<string, { bytes: Uint8Array; exec: boolean }> = {
    "config.json": { bytes: new TextEncoder().encode('{"cidr":"10.0.0.0/16"}\n'), exec: false },
    "nested/deeper/deepest/leaf.txt": { bytes: new TextEncoder().encode("leaf\n"), exec: false },
    "bin/run.sh": { bytes: new TextEncoder().encode("#!/bin/sh\necho hi\n"), exec: true },
    "empty.txt": { bytes: new Uint8Array(0), exec: false },
    "with space/données été.txt": { bytes: new TextEncoder().encode("unicode\n"), exec: false },
    "weights/big.bin": { bytes: big, exec: false },
  };
  for (const [rel, f] of Object.entries(files)) {
    await a.write(`models/vpc/m1/${rel}`, f.bytes, f.exec ? 0o755 : 0o644);
  }
  const totalBytes = Object.values(files).reduce((n, f) => n + f.bytes.length, 0);

  const push = expectCode(await a.run(["push", "--json"]), 0, "push");
  const pushDoc = expectJson(push, "modelsync.push/1");
  assert.equal(pushDoc.lockPath, "scoped");
  const pr = reportByModel(pushDoc).get("vpc/m1");
  assert.ok(pr, describe(push));
  assert.equal(pr.status, "pushed");
  assert.equal(pr.generation, 1);
  assert.equal(pr.files, 6);
  assert.equal(pr.bytes, totalBytes);
  assert.equal(typeof pr.ms, "number");
  assert.deepEqual(pushDoc.summary, {
    ...(pushDoc.summary as object),
    pushed: 1,
    unchanged: 0,
    conflict: 0,
    failed: 0,
    lockTimeout: 0,
  });

  // The datastore layout: one manifest, every blob under blobs/AB/SHA256.
  const ds = sb.datastore;
  assert.ok(await exists(join(ds.dir, "config")), "datastore marker");
  assert.equal((await ds.current("vpc/m1"))?.generation, 1, "head at generation 1");
  const manifest = await ds.current("vpc/m1");
  assert.ok(manifest);
  assert.equal(manifest.format, 2);
  assert.equal(manifest.model, "vpc/m1");
  assert.equal(manifest.generation, 1);
  assert.deepEqual(
    manifest.files.map((f) => f.path).sort(),
    Object.keys(files).sort(),
    "the manifest names exactly the model's files (nothing from .modelsync/)",
  );
  for (const f of manifest.files) {
    const want = files[f.path];
    assert.equal(f.sha256, sha256(want.bytes), f.path);
    assert.equal(f.size, want.bytes.length, f.path);
    assert.equal(f.executable, want.exec, f.path);
    assert.ok(await exists(ds.blobPath(f.pack?.blob ?? f.sha256)), `blob or pack of ${f.path}`);
  }
  assert.deepEqual(await ds.integrityProblems(), []);

  const pull = expectCode(await b.run(["pull", "--json"]), 0, "pull");
  const pullDoc = expectJson(pull, "modelsync.pull/1");
  const pl = reportByModel(pullDoc).get("vpc/m1");
  assert.ok(pl, describe(pull));
  assert.equal(pl.status, "pulled");
  assert.equal(pl.generation, 1);
  assert.equal(pl.files, 6);
  assert.equal(pl.bytes, totalBytes);

  assert.deepEqual(await b.modelFiles("vpc/m1"), Object.keys(files).sort());
  for (const [rel, f] of Object.entries(files)) {
    const got = await b.readBytes(`models/vpc/m1/${rel}`);
    assert.ok(got.length === f.bytes.length && sha256(got) === sha256(f.bytes), `${rel} bytes`);
    const mode = (await Deno.stat(b.path(`models/vpc/m1/${rel}`))).mode! & 0o111;
    if (f.exec) assert.notEqual(mode, 0, `${rel} keeps its x bit`);
    else assert.equal(mode, 0, `${rel} is not executable`);
  }

  // Nothing to do now: both repos report the model unchanged.
  const again = expectJson(expectCode(await b.run(["pull", "--json"]), 0), "modelsync.pull/1");
  assert.equal(reportByModel(again).get("vpc/m1")?.status, "unchanged");
  const noop = expectCode(await a.run(["push", "--json"]), 0, "no-op push");
  const noopDoc = expectJson(noop, "modelsync.push/1");
  for (const m of reportByModel(noopDoc).values()) assert.equal(m.status, "unchanged");
  assert.equal((await ds.manifests()).length, 1, "a no-op push commits nothing");
});

Deno.test("deleting a model pushes a tombstone; the other repo's pull removes its files", async () => {
  await using sb = await Sandbox.create();
  const { a, b } = await sharedBase(sb);
  await a.write("models/vpc/keep/k.txt", "keep\n");
  expectCode(await a.run(["push", "vpc/keep"]), 0);
  expectCode(await b.run(["pull"]), 0);

  await Deno.remove(a.modelDir("vpc/m1"), { recursive: true });
  const push = expectCode(await a.run(["push", "--json", "vpc/m1"]), 0, "push of a deleted model");
  const pr = reportByModel(expectJson(push, "modelsync.push/1"));
  assert.equal(pr.get("vpc/m1")?.status, "deleted", describe(push));
  assert.equal(pr.get("vpc/m1")?.generation, 2);
  const tomb = await sb.datastore.current("vpc/m1");
  assert.equal(tomb?.generation, 2);
  assert.deepEqual(tomb?.files, [], "a tombstone is an empty manifest");

  const remote = expectCode(await b.run(["status", "--remote", "--json"]), 0, "status --remote");
  const rs = new Map(
    (expectJson(remote, "modelsync.status/1").models as {
      model: string;
      remote: { generation: number | null; state: string };
    }[]).map((m) => [m.model, m.remote]),
  );
  assert.deepEqual(rs.get("vpc/m1"), { generation: 2, state: "deleted" }, describe(remote));
  assert.deepEqual(rs.get("vpc/keep"), { generation: 1, state: "same" }, describe(remote));

  const pull = expectCode(await b.run(["pull", "--json"]), 0, "pull of a tombstone");
  const pl = reportByModel(expectJson(pull, "modelsync.pull/1"));
  assert.equal(pl.get("vpc/m1")?.status, "deleted", describe(pull));
  assert.equal(pl.get("vpc/keep")?.status, "unchanged", describe(pull));
  assert.deepEqual(await b.modelFiles("vpc/m1"), [], "the model's files are gone");
  assert.equal(await b.read("models/vpc/keep/k.txt"), "keep\n", "other models untouched");

  // And nothing is pending afterwards on either side.
  const st = expectJson(expectCode(await b.run(["status", "--json"]), 0), "modelsync.status/1");
  for (const m of st.models as { local: Record<string, string[]> }[]) {
    assert.deepEqual(m.local, { added: [], modified: [], deleted: [] }, JSON.stringify(st));
  }
});

Deno.test("three-way pull: a remote-only change lands while a local-only change stays", async () => {
  await using sb = await Sandbox.create();
  const { a, b } = await sharedBase(sb);
  await a.write("models/vpc/m1/x.txt", "x changed by a\n");
  await a.write("models/vpc/m1/added-by-a.txt", "new from a\n");
  expectCode(await a.run(["push"]), 0);
  await b.write("models/vpc/m1/y.txt", "y changed by b, not pushed\n");
  await b.write("models/vpc/m1/local-only.txt", "b's own file\n");

  const pull = expectCode(await b.run(["pull", "--json"]), 0, "three-way pull");
  const pl = reportByModel(expectJson(pull, "modelsync.pull/1")).get("vpc/m1");
  assert.equal(pl?.status, "pulled", describe(pull));
  assert.equal(pl?.generation, 2);
  assert.equal(await b.read("models/vpc/m1/x.txt"), "x changed by a\n");
  assert.equal(await b.read("models/vpc/m1/added-by-a.txt"), "new from a\n");
  assert.equal(await b.read("models/vpc/m1/y.txt"), "y changed by b, not pushed\n");
  assert.equal(await b.read("models/vpc/m1/local-only.txt"), "b's own file\n");
  assert.equal(await b.read("models/vpc/m1/z.txt"), "z version one\n");

  // b's local changes are still pending, now measured against generation 2.
  const st = expectJson(
    expectCode(await b.run(["status", "--json", "vpc/m1"]), 0),
    "modelsync.status/1",
  );
  const m = (st.models as { model: string; local: Record<string, string[]>; base: number }[])[0];
  assert.equal(m.model, "vpc/m1");
  assert.equal(m.base, 2);
  assert.deepEqual(m.local, { added: ["local-only.txt"], modified: ["y.txt"], deleted: [] });
});

Deno.test("both sides changed a file: pull exits 4 listing it; --ours and --theirs resolve", async () => {
  await using sb = await Sandbox.create();
  const { a, b } = await sharedBase(sb);
  await a.write("models/vpc/m1/x.txt", "x from a, round 1\n");
  expectCode(await a.run(["push"]), 0);
  await b.write("models/vpc/m1/x.txt", "x from b, round 1\n");
  const before = await b.read("models/vpc/m1/x.txt");

  const conflict = expectCode(await b.run(["pull", "--json"]), 4, "conflicting pull");
  const cr = reportByModel(expectJson(conflict, "modelsync.pull/1")).get("vpc/m1");
  assert.equal(cr?.status, "conflict", describe(conflict));
  assert.deepEqual(cr?.conflicts, ["x.txt"], describe(conflict));
  assert.equal(await b.read("models/vpc/m1/x.txt"), before, "local file untouched");

  const text = expectCode(await b.run(["pull"]), 4, "conflicting pull (text)");
  assert.match(text.stdout + text.stderr, /x\.txt/, describe(text));
  assert.equal(await b.read("models/vpc/m1/x.txt"), before, "local file still untouched");

  // --ours keeps the local file; a later push sends it.
  expectCode(await b.run(["pull", "--ours"]), 0, "pull --ours");
  assert.equal(await b.read("models/vpc/m1/x.txt"), "x from b, round 1\n");
  const push = expectCode(await b.run(["push", "--json"]), 0, "push after --ours");
  const pr = reportByModel(expectJson(push, "modelsync.push/1")).get("vpc/m1");
  assert.equal(pr?.status, "pushed", describe(push));
  assert.equal(pr?.generation, 3);
  expectCode(await a.run(["pull"]), 0, "a pulls b's version");
  assert.equal(await a.read("models/vpc/m1/x.txt"), "x from b, round 1\n");

  // --theirs takes the remote file.
  await a.write("models/vpc/m1/x.txt", "x from a, round 2\n");
  expectCode(await a.run(["push"]), 0);
  await b.write("models/vpc/m1/x.txt", "x from b, round 2 (to be dropped)\n");
  expectCode(await b.run(["pull"]), 4, "conflict again");
  expectCode(await b.run(["pull", "--theirs"]), 0, "pull --theirs");
  assert.equal(await b.read("models/vpc/m1/x.txt"), "x from a, round 2\n");
  const st = expectJson(expectCode(await b.run(["status", "--json"]), 0), "modelsync.status/1");
  const m = (st.models as { model: string; local: Record<string, string[]>; base: number }[])
    .find((x) => x.model === "vpc/m1");
  assert.deepEqual(m?.local, { added: [], modified: [], deleted: [] }, JSON.stringify(st));
  assert.equal(m?.base, 4);
});

Deno.test("a no-op pull reports every model unchanged", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  for (const id of ["m1", "m2", "m3"]) await a.write(`models/vpc/${id}/f.txt`, `${id}\n`);
  await a.write("models/@acme/net/m4/f.txt", "scoped type\n");
  expectCode(await a.run(["push"]), 0);
  expectCode(await b.run(["pull"]), 0);
  assert.equal(await b.read("models/@acme/net/m4/f.txt"), "scoped type\n");
  for (const repo of [a, b]) {
    const res = expectCode(await repo.run(["pull", "--json"]), 0, "no-op pull");
    const doc = expectJson(res, "modelsync.pull/1");
    const byModel = reportByModel(doc);
    assert.deepEqual(
      [...byModel.keys()].sort(),
      ["@acme/net/m4", "vpc/m1", "vpc/m2", "vpc/m3"],
      describe(res),
    );
    for (const m of byModel.values()) {
      assert.equal(m.status, "unchanged", describe(res));
      assert.equal(m.files, 0);
      assert.equal(m.bytes, 0);
    }
  }
});

Deno.test("status shows added, modified and deleted files, and --remote shows ahead", async () => {
  await using sb = await Sandbox.create();
  const { a, b } = await sharedBase(sb);
  // Same size, written right after the pull: must still be seen (racily clean).
  await b.write("models/vpc/m1/x.txt", "X VERSION ONE\n");
  await Deno.remove(b.path("models/vpc/m1/y.txt"));
  await b.write("models/vpc/m1/new/n.txt", "new\n");
  await b.write("models/vpc/fresh/f.txt", "a model never pushed\n");

  const res = expectCode(await b.run(["status", "--json"]), 0, "status");
  const doc = expectJson(res, "modelsync.status/1");
  type S = {
    model: string;
    local: Record<string, string[]>;
    base: number | null;
    remote?: { generation: number | null; state: string };
  };
  const models = new Map((doc.models as S[]).map((m) => [m.model, m]));
  assert.deepEqual(models.get("vpc/m1")?.local, {
    added: ["new/n.txt"],
    modified: ["x.txt"],
    deleted: ["y.txt"],
  }, describe(res));
  assert.equal(models.get("vpc/m1")?.base, 1);
  assert.equal(models.get("vpc/m1")?.remote, undefined, "no remote without --remote");
  assert.deepEqual(models.get("vpc/fresh")?.local, { added: ["f.txt"], modified: [], deleted: [] });
  assert.equal(models.get("vpc/fresh")?.base, null);

  const text = expectCode(await b.run(["status", "vpc/m1"]), 0, "status text");
  assert.match(text.stdout, /vpc\/m1\s+1 added, 1 modified, 1 deleted/, describe(text));

  await a.write("models/vpc/m1/z.txt", "z changed by a\n");
  expectCode(await a.run(["push"]), 0);
  await a.write("models/vpc/other/o.txt", "only remote\n");
  expectCode(await a.run(["push"]), 0);
  const remote = expectCode(await b.run(["status", "--remote", "--json"]), 0, "status --remote");
  const rdoc = new Map(
    (expectJson(remote, "modelsync.status/1").models as S[]).map((m) => [m.model, m]),
  );
  assert.deepEqual(rdoc.get("vpc/m1")?.remote, { generation: 2, state: "ahead" }, describe(remote));
  assert.deepEqual(
    rdoc.get("vpc/other")?.remote,
    { generation: 1, state: "new" },
    describe(remote),
  );
  assert.equal(rdoc.get("vpc/fresh")?.remote?.state, "absent", describe(remote));
  const rtext = expectCode(await b.run(["status", "--remote", "vpc/m1"]), 0);
  assert.match(rtext.stdout, /remote ahead \(generation 2, base 1\)/, describe(rtext));
});

Deno.test("a symlink inside a model is pushed as a link; excludes and .modelsync are never pushed", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const config = await a.read("modelsync.yaml");
  await Deno.writeTextFile(a.path("modelsync.yaml"), `${config}\nexclude:\n  - "**/*.tmp"\n`);
  await a.write("models/vpc/m1/real.txt", "real\n");
  await a.write("models/vpc/m1/scratch.tmp", "excluded\n");
  await a.write("models/vpc/m1/sub/also.tmp", "excluded too\n");
  await Deno.symlink("real.txt", a.path("models/vpc/m1/link.txt"));
  assert.ok(await exists(a.path(".modelsync")), "init creates .modelsync/");
  assert.match(await a.read(".gitignore"), /^\.modelsync\/$/m, ".gitignore names .modelsync/");

  const push = expectCode(await a.run(["push", "--json"]), 0, "push with a symlink");
  expectJson(push, "modelsync.push/1");
  const m = await sb.datastore.current("vpc/m1");
  assert.deepEqual(m?.files.map((f) => [f.path, f.link]), [
    ["link.txt", "real.txt"],
    ["real.txt", undefined],
  ]);
  const blobs = await sb.datastore.blobs();
  const real = m?.files.find((f) => f.path === "real.txt");
  assert.deepEqual(blobs, [real?.pack?.blob ?? sha256("real\n")], "only the real file is stored");
  assert.equal((await sb.datastore.manifests()).length, 1, "only vpc/m1 has a manifest");
  // -q: only errors on stderr, so no warning.
  await a.write("models/vpc/m1/real.txt", "real, changed\n");
  const quiet = expectCode(await a.run(["push", "-q"]), 0, "push -q");
  assert.equal(quiet.stderr, "", describe(quiet));
  // The link is still there, untouched.
  assert.equal(await Deno.readLink(a.path("models/vpc/m1/link.txt")), "real.txt");
});

Deno.test("--json output of every command is exactly one JSON document with its schema", async () => {
  await using sb = await Sandbox.create();
  const dir = await sb.dir("j");
  const init = expectCode(
    await sb.run(["init", "--json", "--datastore", sb.datastoreSpec], { cwd: dir }),
    0,
    "init --json",
  );
  const initDoc = init.json();
  assert.match(String(initDoc.schema), /^modelsync\.init\/1$/, describe(init));
  assert.ok(await exists(join(dir, "modelsync.yaml")));
  assert.ok(await exists(join(dir, "models")));
  assert.ok(await exists(join(sb.datastore.dir, "config")));
  const yaml = await Deno.readTextFile(join(dir, "modelsync.yaml"));
  assert.match(yaml, /datastore:/);
  // init is idempotent.
  expectCode(await sb.run(["init", "--datastore", sb.datastoreSpec], { cwd: dir }), 0, "re-init");
  assert.equal(await Deno.readTextFile(join(dir, "modelsync.yaml")), yaml);
  const gitignore = await Deno.readTextFile(join(dir, ".gitignore"));
  assert.equal(gitignore.match(/^\.modelsync\/$/gm)?.length, 1, "listed once: " + gitignore);

  await Deno.mkdir(join(dir, "models/vpc/m1"), { recursive: true });
  await Deno.writeTextFile(join(dir, "models/vpc/m1/a.txt"), "a\n");
  const run = (args: string[]) => sb.run(args, { cwd: dir });
  const cases: [string[], string, number][] = [
    [["status", "--json"], "modelsync.status/1", 0],
    [["status", "--remote", "--json"], "modelsync.status/1", 0],
    [["push", "--json"], "modelsync.push/1", 0],
    [["flush", "--json"], "modelsync.flush/1", 0],
    [["pull", "--json"], "modelsync.pull/1", 0],
    [["caps", "--json"], "modelsync.caps/1", 0],
    [["lock", "status", "--json"], "modelsync.locks/1", 0],
    [["lock", "release", "--force", "--json", "vpc/m1"], "modelsync.lock-release/1", 3],
  ];
  for (const [args, schema, code] of cases) {
    const res = expectCode(await run(args), code, args.join(" "));
    expectJson(res, schema);
  }
  // The environment variable works as well as the flag.
  const viaEnv = await sb.run(["status"], { cwd: dir, env: { MODELSYNC_JSON: "1" } });
  expectJson(expectCode(viaEnv, 0), "modelsync.status/1");

  const flush = expectJson(expectCode(await run(["flush", "--json"]), 0), "modelsync.flush/1");
  assert.equal(flush.lockPath, "scoped");
  assert.ok(Array.isArray(flush.models));
  for (const m of reportByModel(flush).values()) assert.equal(m.status, "unchanged");
  const summary = flush.summary as Record<string, number>;
  for (const k of ["pushed", "unchanged", "conflict", "failed", "lockTimeout"]) {
    assert.equal(typeof summary[k], "number", `summary.${k}`);
  }
});

Deno.test("the repository is found from a subdirectory, or named by --repo or MODELSYNC_REPO", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.write("models/vpc/m1/deep/f.txt", "f\n");
  const elsewhere = await sb.dir("elsewhere");
  const runs: [string[], string, Record<string, string>][] = [
    [["status", "--json"], a.path("models/vpc/m1/deep"), {}],
    [["status", "--json", "--repo", a.dir], elsewhere, {}],
    [["status", "--json"], elsewhere, { MODELSYNC_REPO: a.dir }],
  ];
  for (const [args, cwd, env] of runs) {
    const res = expectCode(await sb.run(args, { cwd, env }), 0, `${args.join(" ")} in ${cwd}`);
    const doc = expectJson(res, "modelsync.status/1");
    const models = doc.models as { model: string; local: { added: string[] } }[];
    assert.deepEqual(models.map((m) => [m.model, m.local.added]), [["vpc/m1", ["deep/f.txt"]]]);
  }
  const push = expectCode(await sb.run(["push", "--repo", a.dir], { cwd: elsewhere }), 0);
  assert.equal((await sb.datastore.current("vpc/m1"))?.generation, 1, describe(push));
  assert.deepEqual(await listFiles(elsewhere), [], "nothing written in the working directory");
});

Deno.test("a mode-only change (chmod +x) is pushed and pulled", async () => {
  await using sb = await Sandbox.create();
  const { a, b } = await sharedBase(sb);
  await Deno.chmod(a.path("models/vpc/m1/x.txt"), 0o755);
  const st = expectJson(expectCode(await a.run(["status", "--json"]), 0), "modelsync.status/1");
  const m = (st.models as { model: string; local: Record<string, string[]> }[])[0];
  assert.deepEqual(m.local, { added: [], modified: ["x.txt"], deleted: [] }, JSON.stringify(st));
  const push = expectCode(await a.run(["push", "--json"]), 0);
  const pr = reportByModel(expectJson(push, "modelsync.push/1")).get("vpc/m1");
  assert.equal(pr?.status, "pushed", describe(push));
  assert.equal(pr?.generation, 2);
  const x = (await sb.datastore.current("vpc/m1"))?.files.find((f) => f.path === "x.txt");
  assert.equal(x?.executable, true);
  expectCode(await b.run(["pull"]), 0);
  assert.notEqual((await Deno.stat(b.path("models/vpc/m1/x.txt"))).mode! & 0o111, 0);
  assert.equal(await b.read("models/vpc/m1/x.txt"), "x version one\n");
});

Deno.test("a remote delete against a local edit is a conflict; --ours keeps the model and re-creates it", async () => {
  await using sb = await Sandbox.create();
  const { a, b } = await sharedBase(sb);
  await b.write("models/vpc/m1/x.txt", "x edited in b\n");
  await Deno.remove(a.modelDir("vpc/m1"), { recursive: true });
  expectCode(await a.run(["push", "vpc/m1"]), 0, "tombstone");

  const res = await b.run(["pull", "--json"]);
  expectCode(res, 4, "pull of a tombstone over a local edit");
  const r = reportByModel(expectJson(res, "modelsync.pull/1")).get("vpc/m1");
  assert.equal(r?.status, "conflict", describe(res));
  assert.deepEqual(r?.conflicts, ["x.txt"]);
  assert.equal(await b.read("models/vpc/m1/x.txt"), "x edited in b\n");
  assert.equal(await b.read("models/vpc/m1/y.txt"), "y version one\n", "conflict: nothing touched");

  expectCode(await b.run(["pull", "--ours"]), 0, "pull --ours");
  const all = ["x.txt", "y.txt", "z.txt"];
  assert.deepEqual(await b.modelFiles("vpc/m1"), all, "--ours keeps the whole model");
  assert.equal(await b.read("models/vpc/m1/x.txt"), "x edited in b\n");
  const push = expectCode(await b.run(["push", "--json"]), 0, "push the re-created model");
  assert.equal(reportByModel(expectJson(push, "modelsync.push/1")).get("vpc/m1")?.generation, 3);

  expectCode(await a.run(["pull"]), 0, "a pulls the re-created model");
  assert.deepEqual(await a.modelFiles("vpc/m1"), all);
  assert.equal(await a.read("models/vpc/m1/x.txt"), "x edited in b\n");
});

Deno.test("a remote swap of a file and a directory lands in a clean repository; a local clash is a conflict", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  await a.write("models/vpc/m1/y/z.txt", "z\n");
  await a.write("models/vpc/m1/x", "x was a file\n");
  expectCode(await a.run(["push"]), 0, "first push");
  expectCode(await b.run(["pull"]), 0, "b pulls");

  // Directory y becomes a file y; file x becomes a directory x.
  await Deno.remove(a.path("models/vpc/m1/y"), { recursive: true });
  await a.write("models/vpc/m1/y", "y is a file now\n");
  await Deno.remove(a.path("models/vpc/m1/x"));
  await a.write("models/vpc/m1/x/inner.txt", "x is a directory now\n");
  expectCode(await a.run(["push"]), 0, "push the swap");
  const pull = expectCode(await b.run(["pull", "--json"]), 0, "b pulls the swap");
  assert.equal(reportByModel(expectJson(pull, "modelsync.pull/1")).get("vpc/m1")?.status, "pulled");
  assert.equal(await b.read("models/vpc/m1/y"), "y is a file now\n");
  assert.equal(await b.read("models/vpc/m1/x/inner.txt"), "x is a directory now\n");
  assert.deepEqual(await b.modelFiles("vpc/m1"), ["x/inner.txt", "y"]);

  // b adds a directory w/ while a adds a file w: b's push is a conflict, not a corrupt manifest.
  await b.write("models/vpc/m1/w/mine.txt", "b's\n");
  await a.write("models/vpc/m1/w", "a's\n");
  expectCode(await a.run(["push"]), 0, "a pushes file w");
  const clash = await b.run(["push"]);
  const line = expectOneLineError(clash, 4, "push of a file/directory clash");
  assert.match(line, /both a file and a directory/);
  assert.equal(await b.read("models/vpc/m1/w/mine.txt"), "b's\n", "b's file is kept");
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
});

Deno.test("a model this repository synced that the datastore lost is pushed again by flush", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.write("models/vpc/m1/f.txt", "one\n");
  await a.write("models/vpc/m2/f.txt", "two\n");
  expectCode(await a.run(["push"]), 0, "first push");
  // The datastore loses vpc/m1 (restored from an older backup).
  await Deno.remove(sb.datastore.headDir("vpc/m1"), { recursive: true });
  const flush = expectCode(await a.run(["flush", "--json"]), 0, "flush");
  const r = reportByModel(expectJson(flush, "modelsync.flush/1"));
  assert.equal(r.get("vpc/m1")?.status, "pushed", describe(flush));
  assert.equal(r.get("vpc/m2")?.status, "unchanged", describe(flush));
  assert.equal((await sb.datastore.current("vpc/m1"))?.files.length, 1);
  const b = await sb.repo("b");
  expectCode(await b.run(["pull"]), 0, "another repository pulls it");
  assert.equal(await b.read("models/vpc/m1/f.txt"), "one\n");
});

Deno.test("a touched but unchanged file is hashed once: status records its new mtime in the base", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.write("models/vpc/m1/f.txt", "same\n");
  expectCode(await a.run(["push"]), 0);
  const file = a.path("models/vpc/m1/f.txt");
  const later = new Date(Date.now() + 60_000);
  await Deno.utime(file, later, later);
  const st = expectJson(expectCode(await a.run(["status", "--json"]), 0), "modelsync.status/1");
  assert.deepEqual((st.models as { local: unknown }[])[0].local, {
    added: [],
    modified: [],
    deleted: [],
  });
  const base = JSON.parse(await a.read(".modelsync/base/vpc/m1.json"));
  assert.equal(base.files[0].mtimeMs, later.getTime(), "the base now carries the new mtime");
  // A real edit after that is still seen.
  await a.write("models/vpc/m1/f.txt", "SAME\n");
  await Deno.utime(file, later, later);
  const st2 = expectJson(expectCode(await a.run(["status", "--json"]), 0), "modelsync.status/1");
  assert.deepEqual((st2.models as { local: unknown }[])[0].local, {
    added: [],
    modified: ["f.txt"],
    deleted: [],
  });
});
