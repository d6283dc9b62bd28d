/**
 * End-to-end: no silent data loss from a missing data folder or an
 * accidental whole-model delete (issue 8, points 1 and 2), on the filesystem
 * datastore. Each test checks what a user would: the files in every
 * repository, the datastore's generations, the exit code and the report.
 */
import assert from "node:assert/strict";
import {
  describe,
  expectCode,
  expectJson,
  expectOneLineError,
  type Repo,
  reportByModel,
  Sandbox,
  snapshot,
} from "./_helpers.ts";
import { generations } from "./_data_loss.ts";

/** a pushes vpc/m1 (two files) and vpc/m2 (one file); b pulls both. */
async function twoRepos(sb: Sandbox): Promise<{ a: Repo; b: Repo }> {
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  await a.write("models/vpc/m1/a.txt", "a one\n");
  await a.write("models/vpc/m1/sub/b.txt", "b one\n");
  await a.write("models/vpc/m2/c.txt", "c one\n");
  expectCode(await a.run(["push"]), 0, "first push");
  expectCode(await b.run(["pull"]), 0, "first pull");
  return { a, b };
}

Deno.test("a missing data folder: status, push and flush exit 2 naming it; nothing is committed, nothing lost elsewhere", async () => {
  await using sb = await Sandbox.create();
  const { a, b } = await twoRepos(sb);
  const before = await snapshot(b.path("models"));

  await Deno.remove(a.path("models"), { recursive: true });
  for (const args of [["status"], ["status", "vpc/m1"], ["push"], ["push", "vpc/m1"], ["flush"]]) {
    const res = await a.run(args);
    const line = expectOneLineError(res, 2, args.join(" "));
    assert.ok(line.includes(a.path("models")), `names the folder\n${describe(res)}`);
    assert.match(line, /does not exist/, describe(res));
    assert.match(line, /dataDir in modelsync\.yaml/, describe(res));
    assert.match(line, /mkdir models/, describe(res));
    assert.equal(res.stdout, "", describe(res));
  }
  const flushJson = await a.run(["flush", "--json"]);
  expectOneLineError(flushJson, 2, "flush --json");
  // pull would see every synced model as deleted here: it refuses too.
  expectOneLineError(await a.run(["pull"]), 2, "pull into a missing data folder");
  assert.equal(await a.has("models"), false, "pull did not create the folder");

  // A typo in dataDir is the same mistake.
  await a.write("models/vpc/m1/a.txt", "a one\n");
  const config = await a.read("modelsync.yaml");
  await a.write("modelsync.yaml", `${config}dataDir: modles\n`);
  const typo = await a.run(["flush"]);
  assert.ok(expectOneLineError(typo, 2, "flush with a dataDir typo").includes(a.path("modles")));

  assert.deepEqual(await generations(sb, "vpc/m1"), [1], "no tombstone for vpc/m1");
  assert.deepEqual(await generations(sb, "vpc/m2"), [1], "no tombstone for vpc/m2");
  expectCode(await b.run(["pull"]), 0, "the other repository pulls");
  assert.deepEqual(await snapshot(b.path("models")), before, "and keeps every file");

  // A new repository that never synced anything: pull creates the folder.
  const c = await sb.repo("c");
  await Deno.remove(c.path("models"), { recursive: true });
  expectCode(await c.run(["pull"]), 0, "pull into a new repository");
  assert.deepEqual(await snapshot(c.path("models")), before);
});

Deno.test("a model deleted here is delete-pending (exit 2) unless named or --allow-delete; a pushed tombstone is reported deleted", async () => {
  await using sb = await Sandbox.create();
  const { a, b } = await twoRepos(sb);
  await Deno.remove(a.modelDir("vpc/m1"), { recursive: true });
  await Deno.remove(a.path("models/vpc/m2/c.txt"));
  await a.write("models/vpc/m3/new.txt", "new\n");

  // flush: the other changes go out, the whole-model deletes are held back.
  const flush = await a.run(["flush", "--json"]);
  expectCode(flush, 2, "flush with held deletes beside a push");
  const doc = expectJson(flush, "modelsync.flush/1");
  const r = reportByModel(doc);
  for (const model of ["vpc/m1", "vpc/m2"]) {
    const row = r.get(model);
    assert.equal(row?.status, "delete-pending", `${model}\n${describe(flush)}`);
    assert.equal(row?.generation, 1);
    assert.match(row?.error ?? "", /deleted here/);
    assert.ok(row?.error?.includes(`"modelsync push ${model}"`), describe(flush));
    assert.match(row?.error ?? "", /--allow-delete/);
    assert.ok(row?.error?.includes(`"modelsync pull --theirs ${model}"`), describe(flush));
  }
  assert.equal(r.get("vpc/m3")?.status, "pushed");
  const summary = doc.summary as Record<string, number>;
  assert.equal(summary.deletePending, 2, JSON.stringify(summary));
  assert.equal(summary.pushed, 1);
  assert.equal(summary.deleted, 0);
  assert.deepEqual(await generations(sb, "vpc/m1"), [1], "no tombstone for vpc/m1");
  assert.deepEqual(await generations(sb, "vpc/m2"), [1], "no tombstone for vpc/m2");

  // Only held deletes: exit 2; the text row and the summary say so.
  const text = await a.run(["flush"]);
  expectCode(text, 2, "flush with only held deletes");
  assert.match(text.stdout, /^delete-pending +vpc\/m1 +generation 1/m, describe(text));
  assert.match(text.stdout, /3 models: 1 unchanged, 2 delete-pending/, describe(text));
  const status = expectJson(expectCode(await a.run(["status", "--json"]), 0), "modelsync.status/1");
  const m1 = (status.models as { model: string; wholeModelDeleted?: boolean }[])
    .find((m) => m.model === "vpc/m1");
  assert.equal(m1?.wholeModelDeleted, true, JSON.stringify(status));

  // b pulls: nothing of vpc/m1 or vpc/m2 is deleted there.
  expectCode(await b.run(["pull"]), 0, "pull in b");
  assert.equal(await b.read("models/vpc/m1/a.txt"), "a one\n");
  assert.equal(await b.read("models/vpc/m2/c.txt"), "c one\n");

  // A whole model is deleted when named: status deleted, counted in the summary.
  const named = expectCode(await a.run(["push", "--json", "vpc/m1"]), 0, "push vpc/m1");
  const nd = expectJson(named, "modelsync.push/1");
  assert.equal(reportByModel(nd).get("vpc/m1")?.status, "deleted", describe(named));
  assert.equal(reportByModel(nd).get("vpc/m1")?.generation, 2);
  assert.equal((nd.summary as Record<string, number>).deleted, 1);
  assert.deepEqual((await sb.datastore.current("vpc/m1"))?.files, [], "a tombstone");
  // ... or with --allow-delete (here: from the environment).
  const allowed = await a.run(["flush", "--json"], { env: { MODELSYNC_ALLOW_DELETE: "1" } });
  expectCode(allowed, 0, "flush with MODELSYNC_ALLOW_DELETE=1");
  const ad = expectJson(allowed, "modelsync.flush/1");
  assert.equal(reportByModel(ad).get("vpc/m2")?.status, "deleted", describe(allowed));
  assert.equal((ad.summary as Record<string, number>).deleted, 1);
  assert.deepEqual(await generations(sb, "vpc/m2"), [1, 2]);

  const pull = expectJson(expectCode(await b.run(["pull", "--json"]), 0), "modelsync.pull/1");
  assert.equal(reportByModel(pull).get("vpc/m1")?.status, "deleted");
  assert.equal(reportByModel(pull).get("vpc/m2")?.status, "deleted");
  assert.deepEqual(await b.modelFiles("vpc/m1"), []);
  assert.deepEqual(await b.modelFiles("vpc/m2"), []);
  assert.equal(await b.read("models/vpc/m3/new.txt"), "new\n");
});

Deno.test("--allow-delete and allowDelete in modelsync.yaml push a whole-model delete; deleting some files stays ordinary", async () => {
  await using sb = await Sandbox.create();
  const { a, b } = await twoRepos(sb);
  // Deleting some files of a model is an ordinary change.
  await Deno.remove(a.path("models/vpc/m1/sub/b.txt"));
  const some = expectCode(await a.run(["flush", "--json"]), 0, "flush of a file delete");
  assert.equal(
    reportByModel(expectJson(some, "modelsync.flush/1")).get("vpc/m1")?.status,
    "pushed",
  );

  await Deno.remove(a.modelDir("vpc/m1"), { recursive: true });
  const flag = expectCode(await a.run(["flush", "--json", "--allow-delete"]), 0, "--allow-delete");
  assert.equal(
    reportByModel(expectJson(flag, "modelsync.flush/1")).get("vpc/m1")?.status,
    "deleted",
  );

  await Deno.remove(b.modelDir("vpc/m2"), { recursive: true });
  const config = await b.read("modelsync.yaml");
  await b.write("modelsync.yaml", `${config}allowDelete: true\n`);
  const cfg = expectCode(await b.run(["push", "--json"]), 0, "allowDelete: true");
  const rb = reportByModel(expectJson(cfg, "modelsync.push/1"));
  assert.equal(rb.get("vpc/m2")?.status, "deleted", describe(cfg));
  // The environment overrides the config, and the flag overrides both.
  await a.write("models/vpc/m4/d.txt", "d\n");
  expectCode(await a.run(["push", "vpc/m4"]), 0);
  expectCode(await b.run(["pull", "vpc/m4"]), 0);
  await Deno.remove(b.modelDir("vpc/m4"), { recursive: true });
  const off = await b.run(["flush", "--json"], { env: { MODELSYNC_ALLOW_DELETE: "0" } });
  expectCode(off, 2, "MODELSYNC_ALLOW_DELETE=0 over allowDelete: true");
  assert.equal(
    reportByModel(expectJson(off, "modelsync.flush/1")).get("vpc/m4")?.status,
    "delete-pending",
  );
  const bad = await b.run(["flush"], { env: { MODELSYNC_ALLOW_DELETE: "maybe" } });
  assert.match(expectOneLineError(bad, 2, "a bad MODELSYNC_ALLOW_DELETE"), /use 1 or 0/);
  assert.deepEqual(await generations(sb, "vpc/m4"), [1]);
  const on = await b.run(["flush", "--json", "--allow-delete"], {
    env: { MODELSYNC_ALLOW_DELETE: "0" },
  });
  expectCode(on, 0, "--allow-delete over MODELSYNC_ALLOW_DELETE=0");
  assert.deepEqual(await generations(sb, "vpc/m4"), [1, 2]);
  await a.write("modelsync.yaml", `${await a.read("modelsync.yaml")}allowDelete: maybe\n`);
  assert.match(
    expectOneLineError(await a.run(["flush"]), 2, "allowDelete: maybe"),
    /"allowDelete" must be true or false/,
  );
});

Deno.test("pull --ours against a remote tombstone keeps every local file and reports kept; push re-creates the model", async () => {
  await using sb = await Sandbox.create();
  const { a, b } = await twoRepos(sb);
  await b.write("models/vpc/m1/a.txt", "a edited in b\n");
  await Deno.remove(a.modelDir("vpc/m1"), { recursive: true });
  expectCode(await a.run(["push", "vpc/m1"]), 0, "a deletes vpc/m1");

  const ours = expectCode(await b.run(["pull", "--ours", "--json"]), 0, "pull --ours");
  const doc = expectJson(ours, "modelsync.pull/1");
  const row = reportByModel(doc).get("vpc/m1");
  assert.equal(row?.status, "kept", describe(ours));
  assert.equal(row?.generation, 2);
  assert.deepEqual(row?.conflicts, ["a.txt"]);
  assert.equal((doc.summary as Record<string, number>).kept, 1);
  assert.equal((doc.summary as Record<string, number>).deleted, 0);
  assert.deepEqual(await b.modelFiles("vpc/m1"), ["a.txt", "sub/b.txt"], "every file kept");
  assert.equal(await b.read("models/vpc/m1/a.txt"), "a edited in b\n");
  const text = await b.run(["pull", "--ours"]);
  expectCode(text, 0);
  assert.doesNotMatch(text.stdout, /^deleted/m, describe(text));

  const push = expectCode(await b.run(["push", "--json"]), 0, "push re-creates the model");
  assert.equal(reportByModel(expectJson(push, "modelsync.push/1")).get("vpc/m1")?.status, "pushed");
  assert.equal((await sb.datastore.current("vpc/m1"))?.generation, 3);
  expectCode(await a.run(["pull"]), 0, "a pulls it back");
  assert.deepEqual(await a.modelFiles("vpc/m1"), ["a.txt", "sub/b.txt"]);
  assert.equal(await a.read("models/vpc/m1/a.txt"), "a edited in b\n");
});

Deno.test("pull --theirs brings back a model deleted here whose deletion was not pushed", async () => {
  await using sb = await Sandbox.create();
  const { a, b } = await twoRepos(sb);
  const before = await snapshot(b.modelDir("vpc/m1"));
  await Deno.remove(b.modelDir("vpc/m1"), { recursive: true });
  expectCode(await b.run(["pull"]), 0, "a plain pull keeps the local delete");
  assert.deepEqual(await b.modelFiles("vpc/m1"), []);
  const back = expectCode(await b.run(["pull", "--theirs", "--json", "vpc/m1"]), 0, "--theirs");
  assert.equal(reportByModel(expectJson(back, "modelsync.pull/1")).get("vpc/m1")?.status, "pulled");
  assert.deepEqual(await snapshot(b.modelDir("vpc/m1")), before);
  const flush = expectCode(await b.run(["flush", "--json"]), 0, "nothing pending afterwards");
  assert.equal(
    reportByModel(expectJson(flush, "modelsync.flush/1")).get("vpc/m1")?.status,
    "unchanged",
  );
  assert.deepEqual(await generations(sb, "vpc/m1"), [1]);
  assert.equal(await a.read("models/vpc/m1/a.txt"), "a one\n");
});
