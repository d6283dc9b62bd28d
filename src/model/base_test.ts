import assert from "node:assert/strict";
import { CorruptError } from "../errors.ts";
import {
  basePath,
  type BaseState,
  listBaseModels,
  readBase,
  removeBase,
  writeBase,
} from "./base.ts";
import type { ModelRef } from "./ref.ts";
import { withTempDir } from "../_with_temp_dir.ts";

const SHA = "a".repeat(64);

function state(model: string, files: BaseState["files"] = []): BaseState {
  return { format: 1, model, generation: 3, version: "v3", files, syncedAtMs: 1_700_000_000_000 };
}

Deno.test("writeBase then readBase round-trips, files sorted, no temp left", async () => {
  await withTempDir(async (repo) => {
    const m: ModelRef = { type: "@acme/vpc", id: "m1" };
    const files = [
      { path: "z.bin", sha256: SHA, size: 1, executable: true, mtimeMs: 1.5 },
      { path: "a/b.txt", sha256: SHA, size: 2, executable: false, mtimeMs: 2 },
    ];
    await writeBase(repo, m, state("@acme/vpc/m1", files));
    const got = await readBase(repo, m);
    assert.deepEqual(got?.files.map((f) => f.path), ["a/b.txt", "z.bin"]);
    assert.equal(got?.generation, 3);
    assert.equal(got?.version, "v3");
    assert.equal(basePath(repo, m), `${repo}/.modelsync/base/@acme/vpc/m1.json`);
    const names = (await Array.fromAsync(Deno.readDir(`${repo}/.modelsync/base/@acme/vpc`)))
      .map((e) => e.name);
    assert.deepEqual(names, ["m1.json"]);
  });
});

Deno.test("readBase of a model never synced is null", async () => {
  await withTempDir(async (repo) => {
    assert.equal(await readBase(repo, { type: "vpc", id: "m1" }), null);
  });
});

Deno.test("a corrupt base is a CorruptError with exit code 2 and the remedy", async () => {
  await withTempDir(async (repo) => {
    const m = { type: "vpc", id: "m1" };
    const path = basePath(repo, m);
    await Deno.mkdir(`${repo}/.modelsync/base/vpc`, { recursive: true });
    const bad = [
      "{not json",
      "[]",
      JSON.stringify({ ...state("vpc/m1"), format: 2 }),
      JSON.stringify(state("vpc/other")),
      JSON.stringify({ ...state("vpc/m1"), generation: -1 }),
      JSON.stringify(
        state("vpc/m1", [{ path: "../x", sha256: SHA, size: 1, executable: false, mtimeMs: 0 }]),
      ),
      JSON.stringify(
        state("vpc/m1", [{ path: "a", sha256: "XYZ", size: 1, executable: false, mtimeMs: 0 }]),
      ),
    ];
    for (const text of bad) {
      await Deno.writeTextFile(path, text);
      await assert.rejects(readBase(repo, m), (err: unknown) => {
        assert.ok(err instanceof CorruptError, text);
        assert.equal(err.exitCode, 2);
        assert.ok(!err.message.includes("\n"), err.message);
        assert.match(
          err.message,
          /delete \.modelsync\/base\/vpc\/m1\.json and run "modelsync pull vpc\/m1"/,
        );
        return true;
      });
    }
  });
});

Deno.test("listBaseModels finds plain and scoped types; removeBase prunes", async () => {
  await withTempDir(async (repo) => {
    assert.deepEqual(await listBaseModels(repo), []);
    const refs: ModelRef[] = [
      { type: "vpc", id: "m2" },
      { type: "@acme/net", id: "x.y" },
      { type: "vpc", id: "m1" },
    ];
    for (const r of refs) await writeBase(repo, r, state(`${r.type}/${r.id}`));
    await Deno.writeTextFile(`${repo}/.modelsync/base/vpc/.m9.abc.tmp`, "junk");
    assert.deepEqual(await listBaseModels(repo), [
      { type: "@acme/net", id: "x.y" },
      { type: "vpc", id: "m1" },
      { type: "vpc", id: "m2" },
    ]);
    await removeBase(repo, { type: "@acme/net", id: "x.y" });
    await removeBase(repo, { type: "@acme/net", id: "x.y" }); // missing is fine
    assert.deepEqual(await listBaseModels(repo), [
      { type: "vpc", id: "m1" },
      { type: "vpc", id: "m2" },
    ]);
    await assert.rejects(Deno.stat(`${repo}/.modelsync/base/@acme`), Deno.errors.NotFound);
  });
});
