import assert from "node:assert/strict";
import { join } from "node:path";
import { NotFoundError, UsageError } from "../errors.ts";
import { CONFIG_FILE, ensureGitignore, findRepo, loadConfig, writeConfig } from "./config.ts";
import { type DatastoreConfig, parseDatastoreSpec } from "./datastore_spec.ts";
import { withTempDir } from "../_with_temp_dir.ts";

/** Asserts a one-line UsageError whose message matches `re`. */
async function usageError(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof UsageError, String(err));
    assert.equal(err.exitCode, 2);
    assert.ok(!err.message.includes("\n"), `one line: ${err.message}`);
    assert.match(err.message, re);
    return true;
  });
}

Deno.test("parseDatastoreSpec reads the type and keeps the spec for its provider", () => {
  const t = (spec: string) => parseDatastoreSpec(spec, "/repo").type;
  assert.equal(t("filesystem:/srv/m"), "filesystem");
  assert.equal(t("fs:store"), "filesystem");
  assert.equal(t("file:///srv/a%20b"), "filesystem");
  assert.equal(t("/abs/path"), "filesystem");
  assert.equal(t("./rel"), "filesystem");
  assert.equal(t("C:/windows/like"), "filesystem", "a one-letter scheme is a drive, not a type");
  assert.equal(t("s3://bucket/team"), "s3");
  assert.equal(t("postgresql://h/db"), "postgres");
  assert.equal(t("azure://c/p"), "azure");
  assert.equal(t("module:./p.ts"), "module");
  assert.equal(t("ftp:/x"), "ftp");
  assert.deepEqual(parseDatastoreSpec(" s3://b/p ", "/repo"), {
    type: "s3",
    spec: "s3://b/p",
    baseDir: "/repo",
  });
  for (const bad of ["", "   "]) {
    assert.throws(() => parseDatastoreSpec(bad, "/repo"), UsageError, bad);
  }
});

Deno.test("findRepo walks up to the nearest modelsync.yaml, else NotFoundError", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "a/b/c"), { recursive: true });
    await Deno.writeTextFile(join(dir, "a", CONFIG_FILE), "datastore: /x\n");
    assert.equal(await findRepo(join(dir, "a/b/c")), join(dir, "a"));
    assert.equal(await findRepo(join(dir, "a")), join(dir, "a"));
    await assert.rejects(findRepo(dir), (err: unknown) => {
      assert.ok(err instanceof NotFoundError);
      assert.equal(err.exitCode, 3);
      assert.equal(
        err.message,
        `No modelsync repository at or above ${dir}: run "modelsync init" there or pass --repo DIR.`,
      );
      return true;
    });
  });
});

Deno.test("loadConfig reads every key and applies defaults", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, CONFIG_FILE),
      [
        "datastore: filesystem:store",
        "dataDir: data/models/",
        "exclude: ['*.tmp', '**/__pycache__/**']",
        "lockTimeout: 30s",
        "timeout: 90",
        "jobs: 4",
        "disableCaps: [scopedSync]",
        "holder: ci",
        "symlinks: follow",
        "",
      ].join("\n"),
    );
    assert.deepEqual(await loadConfig(dir), {
      datastore: { type: "filesystem", spec: "filesystem:store", baseDir: dir },
      dataDir: "data/models",
      exclude: ["*.tmp", "**/__pycache__/**"],
      lockTimeout: "30s",
      timeout: "90",
      jobs: 4,
      disableCaps: ["scopedSync"],
      holder: "ci",
      symlinks: "follow",
      fileKeys: [
        "datastore",
        "dataDir",
        "exclude",
        "lockTimeout",
        "timeout",
        "jobs",
        "disableCaps",
        "holder",
        "symlinks",
      ],
    });
    await Deno.writeTextFile(
      join(dir, CONFIG_FILE),
      "datastore:\n  type: filesystem\n  path: rel/store\n",
    );
    // A relative path in the mapping form is resolved by the provider, against the repository.
    assert.deepEqual(await loadConfig(dir), {
      datastore: { type: "filesystem", path: "rel/store" },
      dataDir: "models",
      exclude: [],
      fileKeys: ["datastore"],
    });
    await Deno.writeTextFile(join(dir, CONFIG_FILE), "datastore:\n  type: ftp\n  host: x\n");
    assert.deepEqual((await loadConfig(dir)).datastore, { type: "ftp", host: "x" });
  });
});

Deno.test("config errors are one-line UsageErrors naming the problem and the remedy", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, CONFIG_FILE);
    const check = async (text: string, re: RegExp) => {
      await Deno.writeTextFile(file, text);
      await usageError(loadConfig(dir), re);
    };
    await check(
      "datastore: /x\ncolour: red\n",
      new RegExp(
        `^Invalid modelsync\\.yaml at ${file}: unknown key "colour"\\. Remove it or fix the ` +
          `spelling \\(known keys: datastore, dataDir, exclude, models, symlinks, lockTimeout, ` +
          `timeout, jobs, disableCaps, holder, packSmallFiles, allowDelete\\)\\.$`,
      ),
    );
    await check(
      "datastore: /x\nsymlinks: keep\n",
      /"symlinks" must be "store" \(links leaving a model stop its push\) or "follow" .*, not "keep"\. Fix the value\.$/,
    );
    await check("datastore: [unclosed\n  dataDir: {\n", /YAML/);
    await check("datastore: /x\ndatastore: /y\n", /unique/);
    await check("- a\n- b\n", /top level must be a mapping/);
    await check(
      "datastore: /x\njobs: four\n",
      /"jobs" must be a whole number from 1 up, not "four"/,
    );
    await check("datastore: /x\njobs: 0\n", /"jobs"/);
    await check("datastore: /x\nexclude: '*.tmp'\n", /"exclude" must be a list/);
    await check("datastore: /x\nlockTimeout: soon\n", /"lockTimeout" must be a duration/);
    await check("datastore: /x\ndisableCaps: [fast]\n", /"disableCaps"/);
    await check("datastore: 42\n", /"datastore" must be/);
    await check("datastore:\n  type: ''\n", /"datastore" must be/);
    for (const bad of ["../out", "/abs", ".modelsync", ".modelsync/x", "a/../b", "."]) {
      await check(`datastore: /x\ndataDir: ${JSON.stringify(bad)}\n`, /dataDir .*"models"/);
    }
    await check("", /no datastore is set.*add "datastore: filesystem:\/path"|--datastore/);
    await check(
      "jobs: 2\n",
      /Add "datastore: filesystem:\/path" to modelsync\.yaml or pass --datastore/,
    );
  });
});

Deno.test("a datastore override wins and makes the file's datastore optional", async () => {
  await withTempDir(async (dir) => {
    const override = { type: "filesystem", path: "/over" };
    await Deno.writeTextFile(join(dir, CONFIG_FILE), "jobs: 2\n");
    assert.deepEqual((await loadConfig(dir, { datastoreOverride: override })).datastore, override);
    await Deno.writeTextFile(join(dir, CONFIG_FILE), "datastore: /file\n");
    assert.deepEqual((await loadConfig(dir, { datastoreOverride: override })).datastore, override);
  });
});

Deno.test("loadConfig without modelsync.yaml is NotFoundError", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(loadConfig(dir), NotFoundError);
  });
});

Deno.test("ensureGitignore adds each missing entry once, in any spelling git accepts", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, ".gitignore"), "node_modules/\n/.modelsync");
    assert.deepEqual(await ensureGitignore(dir, ["models/", ".modelsync/"]), ["models/"]);
    assert.equal(
      await Deno.readTextFile(join(dir, ".gitignore")),
      "node_modules/\n/.modelsync\nmodels/\n",
    );
    assert.deepEqual(await ensureGitignore(dir, ["models/", ".modelsync/"]), []);
  });
});

Deno.test("writeConfig creates the layout, is idempotent and never duplicates .gitignore", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, ".gitignore"), "node_modules/");
    const path = await writeConfig(dir, { datastore: "filesystem:/srv/store" });
    assert.equal(path, join(dir, CONFIG_FILE));
    const yaml = await Deno.readTextFile(path);
    assert.match(yaml, /^datastore: filesystem:\/srv\/store$/m);
    assert.ok((await Deno.stat(join(dir, "models"))).isDirectory);
    assert.ok((await Deno.stat(join(dir, ".modelsync"))).isDirectory);
    // .gitignore is init's business (ensureGitignore), not writeConfig's.
    assert.equal(await Deno.readTextFile(join(dir, ".gitignore")), "node_modules/");

    // Same datastore, spelled differently (the comparison init passes): idempotent.
    const same = (a: DatastoreConfig, b: DatastoreConfig) =>
      Promise.resolve(
        String(a.spec).replace(/^filesystem:/, "") === String(b.spec).replace(/^filesystem:/, ""),
      );
    await writeConfig(dir, { datastore: "/srv/store", sameDatastore: same });
    await writeConfig(dir, { datastore: "filesystem:/srv/store" });
    assert.equal(await Deno.readTextFile(path), yaml);

    await usageError(
      writeConfig(dir, { datastore: "filesystem:/elsewhere" }),
      /already initialised with datastore filesystem:\/srv\/store; edit modelsync\.yaml to change it/,
    );
    await usageError(
      writeConfig(dir, { datastore: "/srv/store", dataDir: "other", sameDatastore: same }),
      /already initialised with dataDir "models"/,
    );
    assert.equal(await Deno.readTextFile(path), yaml);
  });
});

Deno.test("writeConfig: custom dataDir, long paths on one line, no .gitignore yet", async () => {
  await withTempDir(async (dir) => {
    const long = "/srv/" + "very-long-directory-name/".repeat(6) + "store";
    await writeConfig(dir, { datastore: long, dataDir: "./data/" });
    const yaml = await Deno.readTextFile(join(dir, CONFIG_FILE));
    assert.ok(yaml.split("\n").includes(`datastore: ${long}`), yaml);
    const config = await loadConfig(dir);
    assert.equal(config.dataDir, "data");
    assert.deepEqual(config.datastore, { type: "filesystem", spec: long, baseDir: dir });
    assert.ok((await Deno.stat(join(dir, "data"))).isDirectory);
    // The other keys are listed, commented out, and the file still loads as written.
    assert.match(yaml, /^# lockTimeout: 60s +# how long to wait for a lock$/m, yaml);
    await usageError(writeConfig(dir, { datastore: long, dataDir: "../x" }), /Invalid data folder/);
  });
});

Deno.test("writeConfig fills in a datastore missing from an existing config, keeping the rest", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, CONFIG_FILE), "# mine\njobs: 3\n");
    await Deno.writeTextFile(join(dir, ".gitignore"), "/.modelsync\n");
    await writeConfig(dir, { datastore: "/srv/s" });
    const yaml = await Deno.readTextFile(join(dir, CONFIG_FILE));
    assert.match(yaml, /# mine/);
    const config = await loadConfig(dir);
    assert.equal(config.jobs, 3);
    assert.deepEqual(config.datastore, { type: "filesystem", spec: "/srv/s", baseDir: dir });
    assert.equal(await Deno.readTextFile(join(dir, ".gitignore")), "/.modelsync\n");
  });
});
