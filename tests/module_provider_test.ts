/**
 * `datastore: {type: module, ...}`: a third party's provider module loaded
 * by the real CLI. The module is imported only by commands that open the
 * datastore, by a path relative to the repository; its config is checked by
 * its own schema; every problem with the module is one line, exit 2, naming
 * it; a module whose capabilities() is missing, throws or returns null takes
 * the global path with one warning; capabilities() is called once per
 * command. The module used is tests/fixtures/counted_provider.ts, which logs
 * its imports and calls.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import {
  describe,
  expectCode,
  expectJson,
  expectOneLineError,
  Repo,
  ROOT,
  type RunResult,
  Sandbox,
} from "./_helpers.ts";

const COUNTED = join(ROOT, "tests/fixtures/counted_provider.ts");
const SQLITE = join(ROOT, "examples/sqlite-provider/mod.ts");

/** A repository whose modelsync.yaml names a module datastore (written before `init`). */
async function moduleRepo(
  sb: Sandbox,
  name: string,
  datastore: Record<string, unknown>,
): Promise<{ repo: Repo; log: string; imports: string }> {
  const dir = await sb.dir(name);
  const log = join(sb.root, `${name}.calls`);
  const imports = join(sb.root, `${name}.imports`);
  const yaml = `datastore: ${JSON.stringify(datastore)}\n`;
  await Deno.writeTextFile(join(dir, "modelsync.yaml"), yaml);
  return { repo: new Repo(sb, dir, { COUNTED_PROVIDER_LOG: imports }), log, imports };
}

/** Lines of a log file (none when it does not exist). */
async function lines(path: string): Promise<string[]> {
  try {
    return (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "");
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

function warnings(res: RunResult): string[] {
  return res.stderr.split("\n").filter((l) => l.startsWith("modelsync: warning: "));
}

Deno.test("type: module is imported by a path relative to the repository, only by commands that open the datastore, and capabilities() is called once per command", async () => {
  await using sb = await Sandbox.create();
  const { repo, log, imports } = await moduleRepo(sb, "a", {
    type: "module",
    module: relative(join(sb.root, "a"), COUNTED),
    config: { path: "../store", log: join(sb.root, "a.calls") },
  });
  expectCode(await repo.run(["--version"]), 0, "--version");
  expectCode(await repo.run(["push", "--help"]), 0, "push --help");
  assert.deepEqual(await lines(imports), [], "the module was imported by --version or --help");

  const init = expectCode(await repo.run(["init"]), 0, "init");
  assert.match(init.stdout, /counted:.*store/, describe(init));
  assert.deepEqual(await lines(imports), ["import"], "init imports the module once");
  assert.ok((await lines(log)).filter((l) => l === "capabilities").length <= 1, "init");

  await repo.write("models/vpc/m1/a.txt", "one\n");
  const commands = [
    ["push", "--json"],
    ["status", "--remote", "--json"], // plain status never opens the datastore
    ["pull", "--json"],
    ["flush", "--json"],
    ["lock", "status", "--json"],
    ["caps", "--json"],
    ["caps", "--probe", "--json"],
  ];
  for (const args of commands) {
    const before = (await lines(log)).length;
    const res = expectCode(await repo.run(args), 0, args.join(" "));
    assert.deepEqual(warnings(res), [], describe(res));
    const calls = (await lines(log)).slice(before);
    assert.deepEqual(
      calls,
      ["create", "capabilities"],
      `modelsync ${args.join(" ")}: one create() and one capabilities() call`,
    );
  }
  assert.equal((await lines(imports)).length, 1 + commands.length, "one import per command");
  const caps = expectJson(await repo.run(["caps", "--json"]), "modelsync.caps/1");
  assert.equal(caps.provider, "counted");
  assert.equal(caps.lockPath, "scoped");
  assert.ok(
    await Deno.stat(join(sb.root, "store", "config")).then(() => true),
    "store at ../store",
  );
});

for (const mode of ["missing", "throws", "null"] as const) {
  Deno.test(`a module whose capabilities() is ${mode === "missing" ? "missing" : mode === "throws" ? "throwing" : "returning null"} takes the global path with one warning, reading it once`, async () => {
    await using sb = await Sandbox.create();
    const { repo, log } = await moduleRepo(sb, "a", {
      type: "module",
      module: COUNTED,
      config: { path: join(sb.root, "store"), log: join(sb.root, "a.calls"), capabilities: mode },
    });
    expectCode(await repo.run(["init"]), 0, "init");
    await repo.write("models/vpc/m1/a.txt", "one\n");
    const expected = {
      missing: /declares no capabilities\(\); using the global lock path/,
      throws: /capabilities\(\) threw \(the counted store is confused\); using the global lock/,
      null: /capabilities\(\) returned null, not an object; using the global lock path/,
    }[mode];
    for (const args of [["push", "--json"], ["pull", "--json"], ["caps", "--probe", "--json"]]) {
      const before = (await lines(log)).filter((l) => l === "capabilities").length;
      const res = expectCode(await repo.run(args), 0, args.join(" "));
      const w = warnings(res);
      assert.equal(w.length, 1, `exactly one warning from ${args.join(" ")}\n${describe(res)}`);
      assert.match(w[0], expected);
      assert.match(w[0], /"counted"/);
      const calls = (await lines(log)).filter((l) => l === "capabilities").length - before;
      assert.equal(calls, mode === "missing" ? 0 : 1, `capabilities() calls by ${args.join(" ")}`);
      const doc = res.json();
      if (args[0] === "caps") {
        assert.equal(doc.lockPath, "global");
        assert.equal(doc.declared, null);
        assert.equal((doc.warnings as string[]).length, 1);
      } else if (args[0] === "push") {
        assert.equal(doc.lockPath, "global", describe(res));
      }
    }
  });
}

Deno.test("a module's config is validated by its own schema: errors name the module and the field, one line, exit 2", async () => {
  await using sb = await Sandbox.create();
  const cases: [Record<string, unknown>, RegExp][] = [
    // The SQLite example requires a path.
    [{}, /"config\.path" is required/],
    [{ path: 5 }, /"config\.path": .*string/i],
    [{ path: "x.db", colour: "red" }, /unknown key in config: "colour"; remove it/],
    [{ path: "x.db", pageSize: 0 }, /"config\.pageSize"/],
  ];
  for (const [i, [config, expected]] of cases.entries()) {
    // The repository's own path to the module, as written in modelsync.yaml.
    const written = relative(join(sb.root, `r${i}`), SQLITE);
    const { repo } = await moduleRepo(sb, `r${i}`, { type: "module", module: written, config });
    for (const args of [["init"], ["push"]]) {
      const line = expectOneLineError(
        await repo.run(args),
        2,
        `${args[0]} ${JSON.stringify(config)}`,
      );
      assert.ok(line.includes(`provider module ${written}`), line);
      assert.match(line, expected);
    }
  }
  // Not a mapping: caught before the module is even loaded.
  const { repo } = await moduleRepo(sb, "bad", { type: "module", module: SQLITE, config: 5 });
  const line = expectOneLineError(await repo.run(["init"]), 2, "config: 5");
  assert.match(line, /"config"/);
});

Deno.test("a module that cannot be imported, exports no provider, or whose create() throws: one line, exit 2, naming the module", async () => {
  await using sb = await Sandbox.create();
  const dir = await sb.dir("modules");
  await Deno.writeTextFile(join(dir, "none.ts"), "export const answer = 42;\n");
  await Deno.writeTextFile(
    join(dir, "broken.ts"),
    "throw new Error('cannot start\\nsecond line');\n",
  );
  await Deno.writeTextFile(
    join(dir, "throws.ts"),
    `export default {
  type: "throws",
  configSchema: { safeParse: (v) => ({ success: true, data: v }) },
  create() { throw new Error("no such cluster\\nat line two"); },
};
`,
  );
  const cases: [string, RegExp][] = [
    [
      "../modules/missing.ts",
      /Cannot load the provider module \.\.\/modules\/missing\.ts: .*not found/i,
    ],
    ["../modules/none.ts", /The provider module \.\.\/modules\/none\.ts exports no provider/],
    [
      "../modules/broken.ts",
      /Cannot load the provider module \.\.\/modules\/broken\.ts: .*cannot start/,
    ],
    [
      "../modules/throws.ts",
      /The provider module \.\.\/modules\/throws\.ts failed to create its provider: no such cluster\./,
    ],
  ];
  for (const [i, [module, expected]] of cases.entries()) {
    const { repo } = await moduleRepo(sb, `r${i}`, { type: "module", module, config: {} });
    for (const args of [["init"], ["pull"], ["caps"]]) {
      const line = expectOneLineError(await repo.run(args), 2, `${args[0]} with ${module}`);
      assert.match(line, expected);
    }
  }
});

Deno.test("module:PATH works as a datastore spec, relative to the repository", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.dir("a");
  const spec = `module:${relative(a, COUNTED)}`;
  const repo = new Repo(sb, a, {});
  const init = expectCode(await repo.run(["init", "--datastore", spec]), 0, "init");
  // The module's default path ("datastore") is relative to the repository too.
  assert.match(init.stdout, new RegExp(`counted:${join(a, "datastore")}`), describe(init));
  await repo.write("models/vpc/m1/a.txt", "one\n");
  expectCode(await repo.run(["push"]), 0, "push");
  const caps = expectJson(await repo.run(["caps", "--json"]), "modelsync.caps/1");
  assert.equal(caps.provider, "counted");
  const b = new Repo(sb, await sb.dir("b"), {});
  await Deno.writeTextFile(
    b.path("modelsync.yaml"),
    `datastore: ${
      JSON.stringify({ type: "module", module: COUNTED, config: { path: join(a, "datastore") } })
    }\n`,
  );
  expectCode(await b.run(["init"]), 0, "init b");
  expectCode(await b.run(["pull"]), 0, "pull b");
  assert.equal(await b.read("models/vpc/m1/a.txt"), "one\n");
});
