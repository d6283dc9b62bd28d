/**
 * End-to-end history on a filesystem datastore: `log` (generations newest
 * first, who, files, bytes, changes, tombstones, --max, unknown models) and
 * `restore MODEL@N` (a tombstoned model brought back, pushed and pulled
 * elsewhere; local changes refused, or saved with --force; generations that
 * do not exist).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  expectCode,
  expectJson,
  expectOneLineError,
  listFiles,
  type Repo,
  Sandbox,
  snapshot,
} from "./_helpers.ts";

interface LogDoc {
  model: string;
  end: string;
  generations: {
    generation: number;
    committedBy: { holder: string; host: string };
    files: number;
    bytes: number;
    deleted: boolean;
    changes: { added: number; modified: number; deleted: number } | null;
  }[];
}

async function logOf(repo: Repo, model: string, extra: string[] = []): Promise<LogDoc> {
  const res = expectCode(await repo.run(["log", model, "--json", ...extra]), 0, "log");
  return expectJson(res, "modelsync.log/1") as unknown as LogDoc;
}

/** Three generations of vpc/m1 by alice: two files; one modified and one added; deleted. */
async function threeGenerations(sb: Sandbox): Promise<Repo> {
  const a = await sb.repo("a", { MODELSYNC_HOLDER: "alice" });
  await a.write("models/vpc/m1/config.json", '{"v":1}\n');
  await a.write("models/vpc/m1/bin/run.sh", "#!/bin/sh\necho one\n", 0o755);
  expectCode(await a.run(["push"]), 0, "push 1");
  await a.write("models/vpc/m1/config.json", '{"v":2}\n');
  await a.write("models/vpc/m1/data/new.bin", "new data\n");
  expectCode(await a.run(["push"]), 0, "push 2");
  await Deno.remove(a.modelDir("vpc/m1"), { recursive: true });
  expectCode(await a.run(["push", "vpc/m1"]), 0, "push 3 (tombstone)");
  return a;
}

Deno.test("log lists generations newest first with who, files, bytes and what changed; a tombstone shows deleted model", async () => {
  await using sb = await Sandbox.create();
  const a = await threeGenerations(sb);
  const doc = await logOf(a, "vpc/m1");
  assert.equal(doc.model, "vpc/m1");
  assert.deepEqual(doc.generations.map((g) => g.generation), [3, 2, 1]);
  assert.equal(doc.end, "first");
  const [g3, g2, g1] = doc.generations;
  assert.equal(g3.deleted, true);
  assert.equal(g3.files, 0);
  assert.deepEqual(g3.changes, { added: 0, modified: 0, deleted: 3 });
  assert.equal(g2.files, 3);
  assert.equal(g2.bytes, '{"v":2}\n'.length + "#!/bin/sh\necho one\n".length + "new data\n".length);
  assert.deepEqual(g2.changes, { added: 1, modified: 1, deleted: 0 });
  assert.deepEqual(g1.changes, { added: 2, modified: 0, deleted: 0 });
  for (const g of doc.generations) {
    assert.equal(g.committedBy.holder, "alice");
    assert.equal(g.committedBy.host, Deno.hostname());
  }

  const human = expectCode(await a.run(["log", "vpc/m1"]), 0, "log (human)");
  const lines = human.stdout.trimEnd().split("\n");
  assert.match(lines[0], /^GEN\s+COMMITTED\s+BY\s+FILES\s+BYTES\s+CHANGES$/);
  assert.match(lines[1], /^3\s.*alice@.*0 files.*deleted model$/);
  assert.match(lines[2], /^2\s.*3 files.*1 added, 1 modified, 0 deleted$/);
  assert.match(lines[3], /^1\s.*2 files.*2 added, 0 modified, 0 deleted \(first commit\)$/);
  assert.equal(lines.length, 4, human.stdout);

  const limited = await logOf(a, "vpc/m1", ["-n", "2"]);
  assert.deepEqual(limited.generations.map((g) => g.generation), [3, 2]);
  assert.equal(limited.end, "limit");
  assert.deepEqual(limited.generations[1].changes, { added: 1, modified: 1, deleted: 0 });
  assert.deepEqual((await logOf(a, "vpc/m1", ["--max", "3"])).generations.length, 3);

  // It reads only the datastore: it works outside any repository too.
  const outside = await sb.dir("outside");
  const bare = expectCode(
    await sb.run(["log", "vpc/m1", "--datastore", sb.datastoreSpec], { cwd: outside }),
    0,
    "log outside a repository",
  );
  assert.match(bare.stdout, /deleted model/);
});

Deno.test("log of an unknown model exits 3, a bad ref or --max exits 2, each with one line", async () => {
  await using sb = await Sandbox.create();
  const a = await threeGenerations(sb);
  assert.match(
    expectOneLineError(await a.run(["log", "vpc/nope"]), 3),
    /vpc\/nope.*not in the datastore/,
  );
  assert.match(expectOneLineError(await a.run(["log", "../x"]), 2), /Invalid model "..\/x"/);
  assert.match(expectOneLineError(await a.run(["log", "vpc/m1", "-n", "0"]), 2), /--max/);
  const doc = expectJson(
    expectCode(await a.run(["--json", "log", "vpc/nope"]), 3),
    "modelsync.error/1",
  );
  assert.equal((doc.error as { exitCode: number }).exitCode, 3);
});

Deno.test("restore brings back a model deleted by a tombstone; push commits it anew and another repository pulls it", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  await a.write("models/vpc/m1/config.json", '{"v":1}\n');
  await a.write("models/vpc/m1/bin/run.sh", "#!/bin/sh\necho one\n", 0o755);
  await a.write("models/vpc/m1/deep/er/leaf.txt", "leaf\n");
  // A link is stored inline (no blob): restore recreates it, verify skips it.
  await Deno.symlink("deep/er/leaf.txt", join(a.modelDir("vpc/m1"), "leaf.link"));
  expectCode(await a.run(["push"]), 0, "push 1");
  const gen1 = await snapshot(a.modelDir("vpc/m1"));
  expectCode(await b.run(["pull"]), 0, "b pulls generation 1");
  await Deno.remove(a.modelDir("vpc/m1"), { recursive: true });
  expectCode(await a.run(["push", "vpc/m1"]), 0, "push the deletion");
  expectCode(await b.run(["pull"]), 0, "b pulls the deletion");
  assert.equal(await b.has("models/vpc/m1"), false, "the tombstone removed it in b");

  const res = expectCode(await a.run(["restore", "vpc/m1@1", "--json"]), 0, "restore");
  const doc = expectJson(res, "modelsync.restore/1");
  assert.equal(doc.generation, 1);
  assert.deepEqual(doc.head, { generation: 2, deleted: true });
  assert.equal(doc.written, 4);
  assert.equal(doc.removed, 0);
  assert.equal(doc.pushNeeded, true);
  assert.equal(await Deno.readLink(join(a.modelDir("vpc/m1"), "leaf.link")), "deep/er/leaf.txt");
  assert.equal(doc.saved, undefined);
  assert.deepEqual(
    await snapshot(a.modelDir("vpc/m1")),
    gen1,
    "the working copy equals generation 1",
  );
  // History is never rewritten: the head is still the tombstone.
  assert.equal((await sb.datastore.current("vpc/m1"))?.generation, 2);
  const status = expectCode(await a.run(["status", "--json", "vpc/m1"]), 0, "status");
  const local =
    (expectJson(status, "modelsync.status/1").models as { local: { added: string[] } }[])[0]
      .local;
  assert.deepEqual(local.added.sort(), [
    "bin/run.sh",
    "config.json",
    "deep/er/leaf.txt",
    "leaf.link",
  ]);

  const push = expectCode(await a.run(["push", "--json"]), 0, "push the restored model");
  const pushed =
    (expectJson(push, "modelsync.push/1").models as { generation: number; status: string }[])[0];
  assert.equal(pushed.status, "pushed");
  assert.equal(pushed.generation, 3);
  const log = await logOf(a, "vpc/m1");
  assert.deepEqual(log.generations.map((g) => [g.generation, g.files, g.deleted]), [
    [3, 4, false],
    [2, 0, true],
    [1, 4, false],
  ]);
  assert.deepEqual(log.generations[0].changes, { added: 4, modified: 0, deleted: 0 });

  expectCode(await b.run(["pull"]), 0, "b pulls generation 3");
  assert.deepEqual(await snapshot(b.modelDir("vpc/m1")), gen1, "b has generation 1's files again");
  assert.equal(await Deno.readLink(join(b.modelDir("vpc/m1"), "leaf.link")), "deep/er/leaf.txt");
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
  expectCode(await a.run(["verify", "--read-data"]), 0, "verify: a link names no blob");
  // A second push has nothing to commit: the base is the new head.
  const again = expectCode(await a.run(["push", "--json"]), 0, "push again");
  assert.equal((expectJson(again, "modelsync.push/1").models as unknown[]).length, 1);
  assert.equal((await sb.datastore.current("vpc/m1"))?.generation, 3);
});

Deno.test("restore refuses to lose local changes (exit 4, nothing changed); --force saves them under .modelsync/restore-saved first", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.write("models/vpc/m1/x.txt", "x one\n");
  await a.write("models/vpc/m1/y.txt", "y one\n");
  expectCode(await a.run(["push"]), 0, "push 1");
  await a.write("models/vpc/m1/x.txt", "x two\n");
  await Deno.remove(a.path("models/vpc/m1/y.txt"));
  await a.write("models/vpc/m1/z.txt", "z two\n");
  expectCode(await a.run(["push"]), 0, "push 2");
  // Local work: x edited, w new, z unchanged (it is in the head: restore may remove it).
  await a.write("models/vpc/m1/x.txt", "x mine\n");
  await a.write("models/vpc/m1/w.txt", "w mine\n");
  const before = await snapshot(a.modelDir("vpc/m1"));

  const refused = await a.run(["restore", "vpc/m1@1"]);
  const line = expectOneLineError(refused, 4, "restore over local changes");
  assert.match(line, /local changes to w\.txt, x\.txt/);
  assert.match(line, /--force/);
  assert.deepEqual(await snapshot(a.modelDir("vpc/m1")), before, "nothing changed");
  assert.equal(await a.has(".modelsync/restore-saved"), false);

  const res = expectCode(await a.run(["restore", "vpc/m1@1", "--force", "--json"]), 0, "--force");
  const doc = expectJson(res, "modelsync.restore/1");
  const saved = doc.saved as { dir: string; paths: string[] };
  assert.deepEqual(saved.paths, ["w.txt", "x.txt"]);
  assert.match(saved.dir, /^\.modelsync\/restore-saved\/vpc\/m1\/\d{8}T\d{6}Z/);
  assert.deepEqual(await listFiles(a.path(saved.dir)), ["w.txt", "x.txt"]);
  assert.equal(await a.read(join(saved.dir, "x.txt")), "x mine\n");
  assert.equal(await a.read(join(saved.dir, "w.txt")), "w mine\n");
  assert.deepEqual(await a.modelFiles("vpc/m1"), ["x.txt", "y.txt"]);
  assert.equal(await a.read("models/vpc/m1/x.txt"), "x one\n");
  assert.equal(await a.read("models/vpc/m1/y.txt"), "y one\n");
  assert.equal(doc.written, 2);
  assert.equal(doc.removed, 2);

  expectCode(await a.run(["push"]), 0, "push the restored state");
  const head = await sb.datastore.current("vpc/m1");
  assert.equal(head?.generation, 3);
  const first = (await sb.datastore.manifests()).find((m) => m.manifest.generation === 1)!;
  assert.deepEqual(head?.files, first.manifest.files, "generation 3 holds generation 1's files");
});

Deno.test("restore in a repository that never synced the model, of the head itself, and of generations that do not exist", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.write("models/vpc/m1/x.txt", "x one\n");
  expectCode(await a.run(["push"]), 0, "push 1");
  await a.write("models/vpc/m1/x.txt", "x two\n");
  expectCode(await a.run(["push"]), 0, "push 2");

  const c = await sb.repo("c");
  const res = expectCode(await c.run(["restore", "vpc/m1@2", "--json"]), 0, "restore the head");
  assert.equal(expectJson(res, "modelsync.restore/1").pushNeeded, false);
  assert.equal(await c.read("models/vpc/m1/x.txt"), "x two\n");
  const human = expectCode(await c.run(["restore", "vpc/m1@1"]), 0, "restore 1 in c");
  assert.match(
    human.stdout,
    /^Restored vpc\/m1 to generation 1: 1 written, 0 removed, 6 B downloaded\.$/m,
  );
  assert.match(human.stdout, /Run "modelsync push vpc\/m1"/);
  assert.equal(await c.read("models/vpc/m1/x.txt"), "x one\n");
  expectCode(await c.run(["push"]), 0, "push from c");
  assert.equal((await sb.datastore.current("vpc/m1"))?.generation, 3);

  assert.match(
    expectOneLineError(await c.run(["restore", "vpc/m1@9"]), 3),
    /no generation 9: its newest is 3/,
  );
  assert.match(
    expectOneLineError(await c.run(["restore", "vpc/none@1"]), 3),
    /vpc\/none.*not in the datastore/,
  );
  assert.match(expectOneLineError(await c.run(["restore", "vpc/m1"]), 2), /MODEL@N/);
  assert.match(expectOneLineError(await c.run(["restore", "vpc/m1@0"]), 2), /MODEL@N/);
  assert.match(expectOneLineError(await c.run(["restore", "vpc/m1@x"]), 2), /MODEL@N/);
});
