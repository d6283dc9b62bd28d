import assert from "node:assert/strict";
import { join } from "node:path";
import { UsageError } from "../errors.ts";
import type { BaseState } from "../model/base.ts";
import type { ModelRef } from "../model/ref.ts";
import { listLocalModels, scanModel, type ScanResult } from "./scan.ts";
import { matchesExclude } from "./exclude.ts";
import { withTempDir } from "../_with_temp_dir.ts";
import { hashBytes } from "../model/hash.ts";

const enc = (s: string) => new TextEncoder().encode(s);

const M: ModelRef = { type: "vpc", id: "m1" };

async function put(repo: string, rel: string, text: string): Promise<void> {
  const path = join(repo, rel);
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeTextFile(path, text);
}

/** A base recording the scan's files, as if synced `agoMs` after their mtimes. */
function baseOf(scan: ScanResult, syncedAtMs: number): BaseState {
  return {
    format: 1,
    model: "vpc/m1",
    generation: 1,
    version: "1",
    files: [...scan.files.values()].map((f) => ({
      path: f.path,
      sha256: f.sha256,
      size: f.size,
      executable: f.executable,
      mtimeMs: f.mtimeMs,
      ...(f.link === undefined ? {} : { link: f.link }),
    })),
    syncedAtMs,
  };
}

/** Sets every file's mtime well in the past so the base can trust it. */
async function age(repo: string, rels: string[], whenMs: number): Promise<void> {
  for (const rel of rels) await Deno.utime(join(repo, rel), whenMs / 1000, whenMs / 1000);
}

const scan = (repo: string, base: BaseState | null, exclude: string[] = []) =>
  scanModel(repo, M, { dataDir: "models", exclude, base });

Deno.test("listLocalModels finds TYPE/ID and @scope/name/ID, warns on the rest", async () => {
  await withTempDir(async (repo) => {
    for (const d of ["vpc/m1", "vpc/m2", "@acme/net/x.1", "Bad/m1", "vpc/.hidden", "@acme/Bad/x"]) {
      await Deno.mkdir(join(repo, "models", d), { recursive: true });
    }
    await put(repo, "models/README.md", "hi");
    await put(repo, "models/vpc/stray.txt", "hi");
    await Deno.symlink(join(repo, "models/vpc/m1"), join(repo, "models/vpc/linked"));
    const { models, warnings } = await listLocalModels(repo, "models");
    assert.deepEqual(models, [
      { type: "@acme/net", id: "x.1" },
      { type: "vpc", id: "m1" },
      { type: "vpc", id: "m2" },
    ]);
    const text = warnings.join("\n");
    for (
      const w of ["models/Bad", "models/vpc/.hidden", "models/@acme/Bad", "README.md", "stray.txt"]
    ) {
      assert.ok(text.includes(w), `${w} in ${text}`);
    }
    assert.match(text, /models\/vpc\/linked: a symlink/);
    assert.deepEqual(await listLocalModels(repo, "nope"), { models: [], warnings: [] });
  });
});

Deno.test("scanModel: new files are added and hashed; missing model dir deletes base files", async () => {
  await withTempDir(async (repo) => {
    await put(repo, "models/vpc/m1/a.txt", "a");
    await put(repo, "models/vpc/m1/d/b.txt", "b");
    const r = await scan(repo, null);
    assert.equal(r.exists, true);
    assert.deepEqual(r.changes, { added: ["a.txt", "d/b.txt"], modified: [], deleted: [] });
    assert.equal(r.hashed, 2);
    assert.equal(r.files.get("a.txt")?.sha256.length, 64);

    await Deno.remove(join(repo, "models/vpc"), { recursive: true });
    const gone = await scan(repo, baseOf(r, Date.now()));
    assert.equal(gone.exists, false);
    assert.deepEqual(gone.changes, { added: [], modified: [], deleted: ["a.txt", "d/b.txt"] });
  });
});

Deno.test("scanModel: unchanged files are not read; changes are detected", async () => {
  await withTempDir(async (repo) => {
    const old = Date.now() - 60_000;
    const rels = ["a.txt", "b.txt", "c.txt", "run.sh", "sub/deep/e.txt"];
    for (const rel of rels) await put(repo, `models/vpc/m1/${rel}`, rel);
    await age(repo, rels.map((r) => `models/vpc/m1/${r}`), old);
    const first = await scan(repo, null);
    const base = baseOf(first, Date.now());

    const noop = await scan(repo, base);
    assert.equal(noop.hashed, 0, "nothing read");
    assert.deepEqual(noop.changes, { added: [], modified: [], deleted: [] });
    assert.equal(noop.files.size, 5);

    await put(repo, "models/vpc/m1/a.txt", "changed, longer");
    await Deno.chmod(join(repo, "models/vpc/m1/run.sh"), 0o755);
    await Deno.remove(join(repo, "models/vpc/m1/c.txt"));
    await put(repo, "models/vpc/m1/new.txt", "new");
    // Touched but same content: hashed and still unchanged.
    await Deno.utime(join(repo, "models/vpc/m1/b.txt"), old / 1000 + 5, old / 1000 + 5);
    const r = await scan(repo, base);
    assert.deepEqual(r.changes, {
      added: ["new.txt"],
      modified: ["a.txt", "run.sh"],
      deleted: ["c.txt"],
    });
    assert.equal(r.hashed, 3, "a.txt, b.txt and new.txt were read; run.sh only changed mode");
    assert.equal(r.files.get("run.sh")?.executable, true);
  });
});

Deno.test("scanModel: a racily clean file (mtime within 2 s of the base) is re-hashed", async () => {
  await withTempDir(async (repo) => {
    await put(repo, "models/vpc/m1/a.txt", "aaaa");
    const first = await scan(repo, null);
    const f = first.files.get("a.txt")!;
    // The base was recorded right when the file was written...
    const base = baseOf(first, f.mtimeMs + 500);
    // ...then the file changed within the same timestamp and size.
    await Deno.writeTextFile(join(repo, "models/vpc/m1/a.txt"), "bbbb");
    await Deno.utime(join(repo, "models/vpc/m1/a.txt"), f.mtimeMs / 1000, f.mtimeMs / 1000);
    const r = await scan(repo, base);
    assert.equal(r.hashed, 1);
    assert.deepEqual(r.changes.modified, ["a.txt"]);
    // Well after the base, the same stat is trusted without reading.
    const trusted = await scan(repo, { ...baseOf(r, f.mtimeMs + 10_000) });
    assert.equal(trusted.hashed, 0);
  });
});

Deno.test("scanModel keeps links inside the model, and reports links leaving it and unsafe names", async () => {
  await withTempDir(async (repo) => {
    const outside = await Deno.makeTempDir();
    try {
      const m = join(repo, "models/vpc/m1");
      await put(repo, "models/vpc/m1/real.txt", "real");
      await put(repo, "models/vpc/m1/v2/w.bin", "w");
      await Deno.writeTextFile(join(outside, "secret"), "secret");
      await Deno.symlink("real.txt", join(m, "link.txt"));
      await Deno.symlink("v2", join(m, "latest"));
      await Deno.symlink("missing/../real.txt", join(m, "lexical"));
      await Deno.symlink("nowhere", join(m, "dangling"));
      await Deno.symlink(outside, join(m, "outside"));
      await Deno.symlink("../../../../x", join(m, "climbs"));
      await Deno.symlink("out/secret", join(m, "through")); // via a link that leaves
      await Deno.symlink(join(outside), join(m, "out"));
      await Deno.symlink("loop2", join(m, "loop1"));
      await Deno.symlink("loop1", join(m, "loop2"));
      await put(repo, "models/vpc/m1/back\\slash", "x");
      await put(repo, "models/vpc/m1/sub/.modelsync", "a file named like the state folder");
      const r = await scan(repo, null);
      assert.deepEqual([...r.files.keys()].sort(), [
        "dangling",
        "latest",
        "lexical",
        "link.txt",
        "real.txt",
        "v2/w.bin",
      ]);
      const link = r.files.get("link.txt")!;
      assert.equal(link.link, "real.txt");
      assert.equal(link.size, 8);
      assert.equal(link.executable, false);
      assert.equal(link.sha256, hashBytes(new TextEncoder().encode("real.txt")));
      assert.equal(r.files.get("latest")?.link, "v2");
      assert.deepEqual(r.unsyncable.map((u) => u.path), [
        "back\\slash",
        "climbs",
        "loop1",
        "loop2",
        "out",
        "outside",
        "through",
      ]);
      const problems = new Map(r.unsyncable.map((u) => [u.path, u.problem]));
      assert.match(problems.get("outside")!, /^a symlink to \/.* that leaves the model$/);
      assert.match(problems.get("through")!, /leaves the model through out \(-> \//);
      assert.equal(problems.get("loop1"), "a symlink loop");
      assert.match(problems.get("back\\slash")!, /contains a backslash/);
      assert.deepEqual(r.skipped, ["sub/.modelsync (modelsync state, never synced)"]);
      // Nothing outside the model was read.
      assert.ok(![...r.files.values()].some((f) => f.sha256 === hashBytes(enc("secret"))));

      // With symlinks: follow, a link leaving the model to a file is read as that file.
      const followed = await scanModel(repo, M, {
        dataDir: "models",
        exclude: [],
        base: null,
        symlinks: "follow",
      });
      const secret = followed.files.get("out/secret") ?? followed.files.get("through");
      assert.equal(secret?.sha256, hashBytes(enc("secret")));
      assert.equal(secret?.link, undefined);
      assert.match(
        new Map(followed.unsyncable.map((u) => [u.path, u.problem])).get("outside")!,
        /a symlink to the directory .* outside the model/,
      );
      assert.ok(!followed.files.has("climbs"), "a dangling link leaving the model is reported");
      assert.match(followed.unsyncable.map((u) => u.path).join(","), /climbs/);
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  });
});

Deno.test("scanModel: a link and a file with the same bytes are different states", async () => {
  await withTempDir(async (repo) => {
    const m = join(repo, "models/vpc/m1");
    await put(repo, "models/vpc/m1/x", "target");
    const asFile = await scan(repo, null);
    const base = baseOf(asFile, asFile.files.get("x")!.mtimeMs + 10_000);
    await Deno.remove(join(m, "x"));
    await Deno.symlink("target", join(m, "x"));
    const asLink = await scan(repo, base);
    assert.equal(asLink.files.get("x")?.sha256, asFile.files.get("x")?.sha256);
    assert.deepEqual(asLink.changes.modified, ["x"], "file -> link is a modification");
    const back = await scan(repo, baseOf(asLink, Date.now() + 10_000));
    assert.deepEqual(back.changes.modified, [], "an unchanged link is unchanged");
  });
});

Deno.test("scanModel reports names that are not valid UTF-8, also when they collide", async () => {
  await withTempDir(async (repo) => {
    const m = join(repo, "models/vpc/m1");
    await put(repo, "models/vpc/m1/ok.txt", "ok");
    await put(repo, "models/vpc/m1/real\uFFFD.txt", "a real U+FFFD in the name");
    // Raw bytes: 0xff is never valid UTF-8. Deno shows it as U+FFFD.
    const made = new Deno.Command("python3", {
      args: [
        "-c",
        "import os,sys; d=sys.argv[1].encode(); open(d+b'/bad\\xff','w').write('x');" +
        "open(d+b'/real\\xff.txt','w').write('y'); os.mkdir(d+b'/dir\\xfe')",
        m,
      ],
    }).outputSync();
    if (!made.success) throw new Error(new TextDecoder().decode(made.stderr));
    const r = await scan(repo, null);
    assert.deepEqual([...r.files.keys()].sort(), ["ok.txt", "real\uFFFD.txt"]);
    assert.deepEqual(r.unsyncable.map((u) => u.path), [
      "bad\uFFFD",
      "dir\uFFFD",
      "real\uFFFD.txt",
    ]);
    assert.ok(r.unsyncable.every((u) => /not valid UTF-8/.test(u.problem)));
  });
});

Deno.test("scanModel refuses a model directory that is a symlink", async () => {
  await withTempDir(async (repo) => {
    await put(repo, "elsewhere/a.txt", "a");
    await Deno.mkdir(join(repo, "models/vpc"), { recursive: true });
    await Deno.symlink(join(repo, "elsewhere"), join(repo, "models/vpc/m1"));
    await assert.rejects(scan(repo, null), UsageError);
  });
});

Deno.test("scanModel applies exclude patterns; excluded base files are not deleted", async () => {
  await withTempDir(async (repo) => {
    for (
      const rel of ["keep.txt", "x.tmp", "d/y.tmp", "src/__pycache__/m.pyc", "__pycache__/n.pyc"]
    ) {
      await put(repo, `models/vpc/m1/${rel}`, rel);
    }
    const all = await scan(repo, null);
    const r = await scan(repo, baseOf(all, Date.now()), ["*.tmp", "**/__pycache__/**"]);
    assert.deepEqual([...r.files.keys()].sort(), ["keep.txt"]);
    assert.deepEqual(r.changes, { added: [], modified: [], deleted: [] });
    assert.deepEqual(r.skipped, []);
  });
});

Deno.test("matchesExclude follows .gitignore-like rules", () => {
  const yes = (path: string, ...p: string[]) => assert.ok(matchesExclude(path, p), `${path} ${p}`);
  const no = (path: string, ...p: string[]) => assert.ok(!matchesExclude(path, p), `${path} ${p}`);
  yes("a.tmp", "*.tmp");
  yes("deep/dir/a.tmp", "*.tmp");
  yes(".hidden.tmp", "*.tmp");
  no("a.tmpx", "*.tmp");
  yes("x/__pycache__/m.pyc", "**/__pycache__/**");
  yes("__pycache__/m.pyc", "**/__pycache__/**");
  no("__pycache__", "**/__pycache__/**");
  yes("scratch.tmp", "**/*.tmp");
  yes("sub/also.tmp", "**/*.tmp");
  yes("data/a.bin", "data/*.bin");
  no("x/data/a.bin", "data/*.bin");
  no("data/sub/a.bin", "data/*.bin");
  yes("data/sub/a.bin", "data/**/*.bin");
  yes("data/a.bin", "data/**/*.bin");
  yes("cache/a/b", "cache/");
  yes("x/cache/a", "cache/");
  no("cache", "cache/");
  yes("cache", "cache");
  yes("keep.bin", "/keep.bin");
  no("d/keep.bin", "/keep.bin");
  yes("logs/today.log", "logs");
  yes("a.bak", "*.{tmp,bak}");
  yes("file1", "file[0-9]");
  no("filex", "file[0-9]");
  yes("filex", "file[!0-9]");
  yes("a?b", "a\\?b");
  no("axb", "a\\?b");
  yes("f.txt", "?.txt");
  no("ab.txt", "?.txt");
  yes("a+b(c).txt", "a+b(c).txt");
  no("anything", "");
  no("anything");
});
