/**
 * End-to-end: `init` writes nothing it must not. A failed init (a datastore
 * that cannot be created, a marker that cannot be written or read) leaves no
 * `modelsync.yaml` behind, so the directory never looks initialised; an
 * existing `modelsync.yaml` is never removed, and is put back as it was when
 * init added a datastore to it and then failed. A datastore spec holding a
 * secret (`postgres://user:password@…`) is refused before anything is
 * written, without echoing it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, exists, expectCode, expectOneLineError, Sandbox } from "./_helpers.ts";

/** Names in a directory, sorted; [] when it does not exist. */
async function entries(dir: string): Promise<string[]> {
  if (!(await exists(dir))) return [];
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

Deno.test("a failed init leaves no modelsync.yaml behind; a good init afterwards works", async () => {
  await using sb = await Sandbox.create();
  const blocker = join(sb.root, "a-file");
  await Deno.writeTextFile(blocker, "not a directory\n");
  const corrupt = await sb.dir("corrupt-store");
  await Deno.writeTextFile(join(corrupt, "modelsync.json"), "{not json");
  const cases = [
    { what: "a datastore that cannot be created", spec: `filesystem:${blocker}/store` },
    { what: "a datastore whose marker cannot be read", spec: `filesystem:${corrupt}` },
  ];
  for (const [i, c] of cases.entries()) {
    const dir = join(sb.root, `repo-${i}`);
    await Deno.mkdir(dir);
    const res = await sb.run(["init", "--datastore", c.spec], { cwd: dir });
    expectOneLineError(res, 6, c.what);
    assert.equal(await exists(join(dir, "modelsync.yaml")), false, `${c.what}\n${describe(res)}`);
    assert.deepEqual(await entries(dir), [], `${c.what}: nothing written in the repository`);
    // Not a repository: commands say so instead of using the half-made one.
    const status = await sb.run(["status"], { cwd: dir });
    expectOneLineError(status, 3, `status after ${c.what}`);
  }
  // The same directory initialises fine once the datastore is good.
  const dir = join(sb.root, "repo-0");
  expectCode(await sb.run(["init", "--datastore", sb.datastoreSpec], { cwd: dir }), 0, "init");
  assert.equal(await exists(join(dir, "modelsync.yaml")), true);
  assert.equal(await exists(join(sb.datastore.dir, "config")), true);
});

Deno.test("a failed init never removes an existing modelsync.yaml, and restores one it changed", async () => {
  await using sb = await Sandbox.create();
  const corrupt = await sb.dir("corrupt-store");
  await Deno.writeTextFile(join(corrupt, "modelsync.json"), "{not json");

  // A hand-written file without a datastore: init would add one, then fails.
  const a = await sb.dir("a");
  const text = "# my settings\njobs: 3\nexclude: ['*.tmp']\n";
  await Deno.writeTextFile(join(a, "modelsync.yaml"), text);
  const res = await sb.run(["init", "--datastore", `filesystem:${corrupt}`], { cwd: a });
  expectOneLineError(res, 6, "init into a corrupt datastore");
  assert.equal(await Deno.readTextFile(join(a, "modelsync.yaml")), text, "put back as it was");

  // A file naming the (broken) datastore already: kept as it is.
  const b = await sb.dir("b");
  const named = `datastore: filesystem:${corrupt}\n`;
  await Deno.writeTextFile(join(b, "modelsync.yaml"), named);
  expectOneLineError(await sb.run(["init"], { cwd: b }), 6, "re-init of a broken datastore");
  assert.equal(await Deno.readTextFile(join(b, "modelsync.yaml")), named, "kept");
});

Deno.test("a datastore spec holding a password is refused before anything is written, never echoed", async () => {
  await using sb = await Sandbox.create();
  const dir = await sb.dir("r");
  const secret = "pg-Pa55word";
  for (
    const [args, env] of [
      [["init", "--datastore", `postgres://admin:${secret}@db.internal:5432/models`], {}],
      [["init"], { MODELSYNC_DATASTORE: `postgresql://admin:${secret}@db.internal/models` }],
    ] as const
  ) {
    const res = await sb.run([...args], { cwd: dir, env: { ...env } });
    expectOneLineError(res, 2, args.join(" "));
    assert.ok(!res.stderr.includes(secret) && !res.stdout.includes(secret), describe(res));
    assert.deepEqual(await entries(dir), [], `nothing written\n${describe(res)}`);
  }
});
