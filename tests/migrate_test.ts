/**
 * End-to-end: a datastore of format 1 is refused with the remedy, converted
 * in place by `modelsync migrate`, and the conversion can be rerun.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  describe,
  expectCode,
  expectJson,
  expectOneLineError,
  readRecordDir,
  Sandbox,
  sha256,
  writeRecordDir,
} from "./_helpers.ts";

const BY = { holder: "old", host: "elsewhere", pid: 4242 };

/** A format-1 manifest of `model` at `generation` with `files` (path → content). */
function format1Manifest(model: string, generation: number, files: Record<string, string>) {
  return JSON.stringify({
    format: 1,
    model,
    generation,
    files: Object.entries(files).map(([path, text]) => ({
      path,
      sha256: sha256(text),
      size: new TextEncoder().encode(text).length,
      executable: false,
    })),
    committedBy: BY,
    committedAt: new Date(Date.now() - 3_600_000).toISOString(),
  });
}

/** Writes a datastore of format 1 under `dir` with `models` (ref → generations of files). */
async function format1Datastore(
  dir: string,
  models: Record<string, Record<string, string>[]>,
): Promise<void> {
  await Deno.mkdir(join(dir, "blobs"), { recursive: true });
  await Deno.writeTextFile(join(dir, "modelsync.json"), '{"format": 1}\n');
  for (const [model, generations] of Object.entries(models)) {
    for (const [i, files] of generations.entries()) {
      for (const text of Object.values(files)) {
        const h = sha256(text);
        await Deno.mkdir(join(dir, "blobs", h.slice(0, 2)), { recursive: true });
        await Deno.writeTextFile(join(dir, "blobs", h.slice(0, 2), h), text);
      }
      const file = join(dir, "manifests", model, `${String(i + 1).padStart(12, "0")}.json`);
      await Deno.mkdir(join(file, ".."), { recursive: true });
      await Deno.writeTextFile(file, format1Manifest(model, i + 1, files));
    }
  }
}

/** A repository pointing at `datastore` (init refuses a format-1 datastore). */
async function repoOn(sb: Sandbox, name: string, datastore: string) {
  const dir = await sb.dir(name);
  await Deno.writeTextFile(join(dir, "modelsync.yaml"), `datastore: filesystem:${datastore}\n`);
  await Deno.mkdir(join(dir, "models"));
  return {
    dir,
    run: (args: string[]) => sb.run(args, { cwd: dir }),
    read: (rel: string) => Deno.readTextFile(join(dir, rel)),
  };
}

Deno.test("a format-1 datastore is refused naming migrate, then migrated in place", async () => {
  await using sb = await Sandbox.create();
  const ds = sb.datastore.dir;
  await format1Datastore(ds, {
    "vpc/m1": [{ "a.txt": "one\n" }, { "a.txt": "two\n", "b/c.txt": "see\n" }],
    "@acme/nlp/bert": [{ "w.bin": "weights\n" }],
  });
  const r = await repoOn(sb, "r", ds);

  for (const cmd of [["pull"], ["push"], ["status", "--remote"], ["caps"]]) {
    const res = await r.run(cmd);
    const line = expectOneLineError(res, 2, cmd.join(" "));
    assert.match(line, /datastore format 1.*run "modelsync migrate"/, describe(res));
  }
  const init = await sb.run(["init", "--datastore", `filesystem:${ds}`], {
    cwd: await sb.dir("i"),
  });
  assert.match(expectOneLineError(init, 2, "init on format 1"), /modelsync migrate/);

  const mig = expectCode(await r.run(["migrate", "--json"]), 0, "migrate");
  const doc = expectJson(mig, "modelsync.migrate/1");
  assert.deepEqual(doc.converted, ["@acme/nlp/bert", "vpc/m1"], describe(mig));
  assert.equal(doc.from, 1);
  // Format 2 now: the marker, heads at the format-1 generations, nothing of format 1 left.
  assert.equal(JSON.parse((await readRecordDir(join(ds, "config")))!).format, 2);
  assert.equal(JSON.parse(await Deno.readTextFile(join(ds, "modelsync.json"))).format, 2);
  assert.equal((await sb.datastore.current("vpc/m1"))?.generation, 2);
  assert.equal(
    await readRecordDir(join(ds, "manifests/vpc/m1")),
    null,
    "format-1 manifest removed",
  );
  assert.equal(
    await readRecordDir(join(ds, "locks/global.json")),
    null,
    "the blocker was released",
  );
  assert.deepEqual(await sb.datastore.integrityProblems(), []);

  expectCode(await r.run(["pull"]), 0, "pull after migrate");
  assert.equal(await r.read("models/vpc/m1/a.txt"), "two\n");
  assert.equal(await r.read("models/vpc/m1/b/c.txt"), "see\n");
  assert.equal(await r.read("models/@acme/nlp/bert/w.bin"), "weights\n");

  const again = expectCode(await r.run(["migrate"]), 0, "migrate again");
  assert.match(again.stdout, /already in format 2: nothing to migrate/);
});

Deno.test("migrate resumes after an interruption and waits for no dead format-1 holder", async () => {
  await using sb = await Sandbox.create();
  const ds = sb.datastore.dir;
  await format1Datastore(ds, {
    "vpc/m1": [{ "a.txt": "one\n" }],
    "vpc/m2": [{ "b.txt": "two\n" }],
  });
  // An earlier run converted vpc/m1 and stopped before the marker.
  await writeRecordDir(
    sb.datastore.headDir("vpc/m1"),
    JSON.stringify({
      ...JSON.parse(format1Manifest("vpc/m1", 1, { "a.txt": "one\n" })),
      format: 2,
      commit: "00112233445566ff",
      parent: null,
    }),
  );
  // A format-1 lock whose holder died long ago.
  const old = new Date(Date.now() - 3_600_000).toISOString();
  await Deno.mkdir(join(ds, "locks/models/vpc"), { recursive: true });
  await Deno.writeTextFile(
    join(ds, "locks/models/vpc/m2.json"),
    JSON.stringify({
      key: "vpc/m2",
      ...BY,
      operation: "push",
      acquiredAt: old,
      renewedAt: old,
      ttlMs: 30_000,
      nonce: "n0",
      seq: 3,
    }),
  );
  const r = await repoOn(sb, "r", ds);
  const doc = expectJson(expectCode(await r.run(["migrate", "--json"]), 0), "modelsync.migrate/1");
  assert.deepEqual(doc.converted, ["vpc/m2"]);
  assert.deepEqual(doc.alreadyConverted, ["vpc/m1"]);
  expectCode(await r.run(["pull"]), 0);
  assert.equal(await r.read("models/vpc/m2/b.txt"), "two\n");
});

Deno.test("migrate refuses while a format-1 process holds a live lock, and changes nothing", async () => {
  await using sb = await Sandbox.create();
  const ds = sb.datastore.dir;
  await format1Datastore(ds, { "vpc/m1": [{ "a.txt": "one\n" }] });
  const now = new Date().toISOString();
  await Deno.mkdir(join(ds, "locks"), { recursive: true });
  await Deno.writeTextFile(
    join(ds, "locks/global.json"),
    JSON.stringify({
      key: "global",
      ...BY,
      operation: "push",
      acquiredAt: now,
      renewedAt: now,
      ttlMs: 600_000,
      nonce: "live",
      seq: 0,
    }),
  );
  const r = await repoOn(sb, "r", ds);
  const res = await r.run(["migrate"]);
  const line = expectOneLineError(res, 75, "migrate behind a live format-1 lock");
  assert.match(line, /format-1 modelsync is working.*old@elsewhere/, describe(res));
  assert.equal(await readRecordDir(join(ds, "config")), null, "no format-2 marker was written");
  assert.equal(await sb.datastore.current("vpc/m1"), null, "nothing was converted");
  assert.match(await Deno.readTextFile(join(ds, "locks/global.json")), /"live"/);
});
