/**
 * Sparse repositories and refs given as paths (issue 14 point 6): `models:`
 * in modelsync.yaml limits what a bare `pull` and `status --remote`
 * consider; `models/TYPE/ID/` works wherever a ref does.
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
  Sandbox,
} from "./_helpers.ts";

Deno.test("models: in modelsync.yaml limits a bare pull and status --remote", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  for (const m of ["vision/resnet", "vision/vit", "audio/whisper", "@acme/nlp/bert"]) {
    await a.write(`models/${m}/w.txt`, m);
  }
  expectCode(await a.run(["push"]), 0);

  const b = await sb.repo("b");
  await Deno.writeTextFile(b.path("modelsync.yaml"), `models: ["vision/*", "@acme/**"]\n`, {
    append: true,
  });
  const pulled = expectJson(expectCode(await b.run(["pull", "--json"]), 0), "modelsync.pull/1");
  assert.deepEqual([...reportByModel(pulled).keys()].sort(), [
    "@acme/nlp/bert",
    "vision/resnet",
    "vision/vit",
  ]);
  assert.equal(await b.read("models/vision/vit/w.txt"), "vision/vit");
  assert.equal(await b.has("models/audio"), false, "audio/whisper is outside models:");

  const status = expectCode(await b.run(["status", "--remote"]), 0);
  assert.doesNotMatch(status.stdout, /audio\/whisper/, describe(status));
  assert.match(status.stdout, /vision\/resnet\s+clean; remote same/, describe(status));

  // A model named on the command line is pulled whatever models: says, also as a path;
  // once here, a bare pull keeps it up to date.
  expectCode(await b.run(["pull", "models/audio/whisper/"]), 0, "pull by path");
  assert.equal(await b.read("models/audio/whisper/w.txt"), "audio/whisper");
  await a.write("models/audio/whisper/w.txt", "v2");
  expectCode(await a.run(["push"]), 0);
  expectCode(await b.run(["pull"]), 0);
  assert.equal(await b.read("models/audio/whisper/w.txt"), "v2");
});

Deno.test("refs given as paths: a folder, with a trailing slash, from a subfolder", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.write("models/vision/resnet/w.txt", "w");
  await a.write("models/@acme/nlp/bert/w.txt", "b");
  const push = expectJson(
    expectCode(await a.run(["push", "--json", "models/vision/resnet/"]), 0),
    "modelsync.push/1",
  );
  assert.deepEqual([...reportByModel(push).keys()], ["vision/resnet"]);
  const sub = expectJson(
    expectCode(await a.run(["status", "--json", "resnet/"], { cwd: a.path("models/vision") }), 0),
    "modelsync.status/1",
  );
  assert.deepEqual((sub.models as { model: string }[]).map((m) => m.model), ["vision/resnet"]);
  const rel = expectJson(
    expectCode(
      await a.run(["status", "--json", "./bert/"], { cwd: a.path("models/@acme/nlp") }),
      0,
    ),
    "modelsync.status/1",
  );
  assert.deepEqual((rel.models as { model: string }[]).map((m) => m.model), ["@acme/nlp/bert"]);
  const bad = expectOneLineError(await a.run(["push", "./elsewhere/x/"]), 2);
  assert.match(bad, /does not name a model folder models\/TYPE\/ID/, bad);
});

Deno.test("a bad models: entry in modelsync.yaml is one error line naming it", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await Deno.writeTextFile(a.path("modelsync.yaml"), `models: ["vision/**x"]\n`, { append: true });
  const line = expectOneLineError(await a.run(["pull"]), 2);
  assert.match(line, /"models" entry "vision\/\*\*x": \*\* must be a whole segment/, line);
});
