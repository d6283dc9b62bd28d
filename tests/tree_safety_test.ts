/**
 * End-to-end safety of the working tree (issue 8, points 4, 5 and 10): every
 * entry of a model is synced or reported (names that are not valid UTF-8,
 * symbolic links inside and outside a model), one rule for which paths can
 * be synced, and local faults (no space, a name too long, permission denied)
 * as one-line errors with exit 2.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import {
  cliEnv,
  describe,
  exists,
  expectCode,
  expectJson,
  expectOneLineError,
  listFiles,
  MAIN,
  pseudoRandomBytes,
  type Repo,
  reportByModel,
  type RunResult,
  Sandbox,
  sha256,
  slowStore,
  snapshot,
  waitFor,
} from "./_helpers.ts";

/** Runs a bash snippet with `$1` = `dir` (raw bytes in names: `$'\xff'`). */
async function bash(dir: string, script: string): Promise<void> {
  const out = await new Deno.Command("bash", { args: ["-c", script, "bash", dir] }).output();
  if (!out.success) throw new Error(`bash failed: ${new TextDecoder().decode(out.stderr)}`);
}

/** Adds lines to a repository's modelsync.yaml. */
async function configure(repo: Repo, lines: string): Promise<void> {
  const config = await repo.read("modelsync.yaml");
  await Deno.writeTextFile(repo.path("modelsync.yaml"), `${config}\n${lines}\n`);
}

/** Stores blobs and a manifest directly in the filesystem datastore (as a faulty writer would). */
async function plant(
  sb: Sandbox,
  model: string,
  generation: number,
  files: { path: string; content: string; link?: string }[],
): Promise<void> {
  const enc = new TextEncoder();
  const entries = [];
  for (const f of files) {
    const bytes = enc.encode(f.link ?? f.content);
    const hash = sha256(bytes);
    if (f.link === undefined) {
      await Deno.mkdir(dirname(sb.datastore.blobPath(hash)), { recursive: true });
      await Deno.writeFile(sb.datastore.blobPath(hash), bytes);
    }
    entries.push({
      path: f.path,
      sha256: hash,
      size: bytes.length,
      executable: false,
      ...(f.link === undefined ? {} : { link: f.link }),
    });
  }
  const head = await sb.datastore.current(model);
  await sb.datastore.setHead(model, {
    format: 2,
    model,
    generation,
    commit: crypto.randomUUID().replaceAll("-", "").slice(0, 16),
    parent: head === null ? null : { generation: head.generation, commit: head.commit },
    files: entries,
    committedBy: { holder: "mallory", host: "elsewhere", pid: 4242 },
    committedAt: new Date().toISOString(),
  });
}

/** The current manifest's files of a model as `path -> sha256` (links: `-> target`). */
async function stored(sb: Sandbox, model: string): Promise<Record<string, string>> {
  const m = await sb.datastore.current(model);
  return Object.fromEntries(
    (m?.files ?? []).map((f) => [f.path, f.link === undefined ? f.sha256 : `-> ${f.link}`]),
  );
}

Deno.test("a name that is not valid UTF-8 stops its model's push (exit 2), is reported, and nothing of that model is pushed", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  await a.write("models/vpc/m1/data.bin", "weights v1\n");
  await a.write("models/vpc/m1/keep.txt", "keep v1\n");
  await a.write("models/vpc/m2/other.txt", "other v1\n");
  expectCode(await a.run(["push"]), 0, "first push");
  expectCode(await b.run(["pull"]), 0, "first pull");
  const before = await stored(sb, "vpc/m1");

  // Rename data.bin to a name with a raw 0xff byte, and change keep.txt: a
  // commit without the unreadable name would delete data.bin for everyone.
  await bash(a.modelDir("vpc/m1"), `cd "$1" && mv data.bin $'data\\xff.bin'`);
  await a.write("models/vpc/m1/keep.txt", "keep v2\n");
  await a.write("models/vpc/m2/other.txt", "other v2\n");

  const status = expectCode(await a.run(["status", "--json"]), 0, "status");
  const m1 = (expectJson(status, "modelsync.status/1").models as Record<string, unknown>[])
    .find((m) => m.model === "vpc/m1")!;
  assert.deepEqual(m1.unsyncable, [{
    path: "data\uFFFD.bin",
    problem: "its name is not valid UTF-8 (shown with U+FFFD)",
  }], describe(status));
  const text = expectCode(await a.run(["status"]), 0, "status text");
  assert.match(
    text.stdout,
    /^vpc\/m1 .*1 cannot be synced \(push refuses the model\): data\uFFFD\.bin \(its name is not valid UTF-8/m,
    describe(text),
  );

  const push = await a.run(["push", "vpc/m1"]);
  const line = expectOneLineError(push, 2, "push of a model with an unsyncable name");
  assert.match(line, /Cannot push vpc\/m1: 1 entry of vpc\/m1 cannot be synced: data\uFFFD\.bin/);
  assert.match(line, /Nothing of vpc\/m1 was pushed\. Rename or remove it, or add it to exclude/);

  const flush = await a.run(["flush", "--json"]);
  expectCode(flush, 5, "flush: m1 refused, m2 pushed");
  const rows = reportByModel(expectJson(flush, "modelsync.flush/1"));
  assert.equal(rows.get("vpc/m1")?.status, "failed", describe(flush));
  assert.deepEqual((rows.get("vpc/m1") as unknown as Record<string, unknown>).unsyncable, [{
    path: "data\uFFFD.bin",
    problem: "its name is not valid UTF-8 (shown with U+FFFD)",
  }]);
  assert.equal(rows.get("vpc/m2")?.status, "pushed", describe(flush));

  // The datastore still holds m1 as it was; another repository keeps data.bin.
  assert.deepEqual(await stored(sb, "vpc/m1"), before);
  expectCode(await b.run(["pull"]), 0, "pull in b");
  assert.equal(await b.read("models/vpc/m1/data.bin"), "weights v1\n");
  assert.equal(await b.read("models/vpc/m1/keep.txt"), "keep v1\n");
  assert.equal(await b.read("models/vpc/m2/other.txt"), "other v2\n");

  // The remedy works: exclude it, and the rest of the model is pushed.
  await configure(a, `exclude: ["data*.bin"]`);
  expectCode(await a.run(["push", "vpc/m1"]), 0, "push after excluding the name");
  assert.deepEqual(Object.keys(await stored(sb, "vpc/m1")), ["data.bin", "keep.txt"]);
});

Deno.test("symlinks: links inside a model are pushed as links and recreated exactly; a link leaving it stops the push (exit 2) unless symlinks: follow", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  const outside = await sb.dir("outside");
  await Deno.writeTextFile(join(outside, "secret.txt"), "outside content\n");
  const m = a.modelDir("vpc/m1");
  const weights = pseudoRandomBytes(10_000, 7);
  await a.write("models/vpc/m1/v2/w.bin", weights);
  await a.write("models/vpc/m1/notes.txt", "notes\n");
  await Deno.symlink("v2", join(m, "latest"));
  await Deno.symlink("v2/w.bin", join(m, "run"));
  await Deno.mkdir(join(m, "bin"));
  await Deno.symlink("../latest/w.bin", join(m, "bin/w"));
  expectCode(await a.run(["push"]), 0, "push with links inside the model");
  assert.deepEqual(await stored(sb, "vpc/m1"), {
    "bin/w": "-> ../latest/w.bin",
    latest: "-> v2",
    "notes.txt": sha256("notes\n"),
    run: "-> v2/w.bin",
    "v2/w.bin": sha256(weights),
  });
  // No blob for a link: only the two files are stored (notes.txt in a pack, w.bin too).
  const files = (await sb.datastore.current("vpc/m1"))!.files.filter((f) => f.link === undefined);
  assert.deepEqual(
    (await sb.datastore.blobs()).sort(),
    [...new Set(files.map((f) => f.pack?.blob ?? f.sha256))].sort(),
    "no blob for a link",
  );
  assert.deepEqual(await sb.datastore.integrityProblems(), []);

  expectCode(await b.run(["pull"]), 0, "pull recreates the links");
  const bm = b.modelDir("vpc/m1");
  assert.equal(await Deno.readLink(join(bm, "latest")), "v2");
  assert.equal(await Deno.readLink(join(bm, "bin/w")), "../latest/w.bin");
  assert.equal(await Deno.readLink(join(bm, "run")), "v2/w.bin");
  assert.deepEqual(await Deno.readFile(join(bm, "bin/w")), weights);
  assert.deepEqual(await snapshot(bm), await snapshot(m), "b's tree equals a's");
  const again = expectCode(await b.run(["push", "--json"]), 0, "no-op push in b");
  assert.equal(reportByModel(again.json()).get("vpc/m1")?.status, "unchanged", describe(again));

  // A link leaving the model (absolute, or climbing out) stops the push, naming it.
  await Deno.symlink(join(outside, "secret.txt"), join(m, "secret"));
  await Deno.symlink("../../../../outside/secret.txt", join(m, "climb"));
  await a.write("models/vpc/m1/notes.txt", "notes v2\n");
  const before = await stored(sb, "vpc/m1");
  const push = await a.run(["push", "vpc/m1"]);
  const line = expectOneLineError(push, 2, "push with links leaving the model");
  assert.match(line, /Cannot push vpc\/m1: 2 entries of vpc\/m1 cannot be synced: /);
  assert.match(
    line,
    /climb \(a symlink to \.\.\/\.\.\/\.\.\/\.\.\/outside\/secret\.txt that leaves/,
  );
  assert.match(line, /secret \(a symlink to \/.*\/outside\/secret\.txt that leaves the model\)/);
  assert.match(line, /set "symlinks: follow" there/);
  assert.deepEqual(await stored(sb, "vpc/m1"), before, "nothing of the model was pushed");
  const flush = await a.run(["flush", "--json"]);
  expectCode(flush, 2, "flush of that model");
  const row = reportByModel(expectJson(flush, "modelsync.flush/1")).get("vpc/m1")!;
  assert.deepEqual(
    (row as unknown as { unsyncable: { path: string }[] }).unsyncable.map((u) => u.path),
    ["climb", "secret"],
  );

  // symlinks: follow syncs the content of the file each points to.
  await configure(a, "symlinks: follow");
  expectCode(await a.run(["push"]), 0, "push with symlinks: follow");
  const now = await stored(sb, "vpc/m1");
  assert.equal(now.secret, sha256("outside content\n"));
  assert.equal(now.climb, sha256("outside content\n"));
  assert.equal(now.latest, "-> v2", "links inside are still links");
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
  expectCode(await b.run(["pull"]), 0, "pull of followed files");
  assert.equal((await Deno.lstat(join(bm, "secret"))).isFile, true);
  assert.equal(await b.read("models/vpc/m1/secret"), "outside content\n");
  // Unchanged links are still unchanged for a, with follow (no re-push).
  const noop = expectCode(await a.run(["push", "--json"]), 0, "no-op push with follow");
  assert.equal(reportByModel(noop.json()).get("vpc/m1")?.status, "unchanged", describe(noop));
  assert.equal(await Deno.readLink(join(m, "secret")), join(outside, "secret.txt"));
  assert.equal(await Deno.readTextFile(join(outside, "secret.txt")), "outside content\n");
});

Deno.test("pull replaces a link by a file and a file by a link without writing through either", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  const m = a.modelDir("vpc/m1");
  await a.write("models/vpc/m1/w.bin", "weights\n");
  await a.write("models/vpc/m1/notes.txt", "notes\n");
  await Deno.symlink("w.bin", join(m, "run"));
  expectCode(await a.run(["push"]), 0, "push");
  expectCode(await b.run(["pull"]), 0, "pull");

  // In a: the link becomes a file, the file becomes a link (same bytes as before: "w.bin").
  await Deno.remove(join(m, "run"));
  await a.write("models/vpc/m1/run", "a script now\n");
  await Deno.remove(join(m, "notes.txt"));
  await Deno.symlink("w.bin", join(m, "notes.txt"));
  expectCode(await a.run(["push"]), 0, "push of the swaps");
  assert.deepEqual(await stored(sb, "vpc/m1"), {
    "notes.txt": "-> w.bin",
    run: sha256("a script now\n"),
    "w.bin": sha256("weights\n"),
  });

  const pull = expectCode(await b.run(["pull", "--json"]), 0, "pull of the swaps");
  assert.equal(reportByModel(pull.json()).get("vpc/m1")?.status, "pulled", describe(pull));
  const bm = b.modelDir("vpc/m1");
  assert.equal((await Deno.lstat(join(bm, "run"))).isFile, true, "the link was replaced");
  assert.equal(await b.read("models/vpc/m1/run"), "a script now\n");
  assert.equal(await b.read("models/vpc/m1/w.bin"), "weights\n", "never written through run");
  assert.equal(await Deno.readLink(join(bm, "notes.txt")), "w.bin");
  assert.deepEqual(await snapshot(bm), await snapshot(m));
  assert.deepEqual(await listFiles(b.path(".modelsync/tmp")), [], "no temporary left");
});

Deno.test("a manifest holding a link that leaves the model, or a .modelsync path, is refused as corrupt; the scan never syncs .modelsync", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  // The scan never syncs a .modelsync entry, a file as well as a directory, at any depth.
  await a.write("models/vpc/m1/ok.txt", "ok\n");
  await a.write("models/vpc/m1/.modelsync", "a file named like the state folder\n");
  await a.write("models/vpc/m1/sub/.modelsync/base/x.json", "{}\n");
  const push = expectCode(await a.run(["push"]), 0, "push skips .modelsync entries");
  assert.match(push.stderr, /warning: Skipped vpc\/m1\/\.modelsync \(modelsync state/);
  assert.match(push.stderr, /warning: Skipped vpc\/m1\/sub\/\.modelsync \(modelsync state/);
  assert.deepEqual(Object.keys(await stored(sb, "vpc/m1")), ["ok.txt"]);

  const b = await sb.repo("b");
  await b.write("models/vpc/m2/mine.txt", "mine\n");
  await b.write("models/vpc/m3/mine.txt", "mine\n");
  await b.write("models/vpc/m4/mine.txt", "mine\n");
  const bad: [string, { path: string; content: string; link?: string }[], RegExp][] = [
    [
      "vpc/m2",
      [{ path: "sub/.modelsync/base/vpc/m2.json", content: "{}" }],
      /"sub\/\.modelsync\/base\/vpc\/m2\.json": it has a \.modelsync segment/,
    ],
    [
      "vpc/m3",
      [{ path: "x", content: "", link: "../../../../../etc/passwd" }],
      /"x": it is a symlink to \.\.\/\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd that leaves the model/,
    ],
    [
      "vpc/m4",
      [{ path: "up", content: "", link: "." }, { path: "x", content: "", link: "up/../y" }],
      /"x": it is a symlink to up\/\.\.\/y that leaves the model/,
    ],
  ];
  for (const [model, files] of bad) await plant(sb, model, 1, files);
  const models = await snapshot(b.path("models"));
  for (const [model, , re] of bad) {
    const res = await b.run(["pull", model]);
    const line = expectOneLineError(res, 6, `pull of ${model}`);
    assert.match(line, re, describe(res));
    assert.match(line, /refusing it as corrupt\. Nothing was written/, describe(res));
  }
  assert.deepEqual(await snapshot(b.path("models")), models, "nothing was written");
  assert.equal(await exists(b.path("models/vpc/m2/sub")), false);
  assert.equal(await exists(b.path(".modelsync/base/vpc/m2.json")), false);
});

/** Runs the CLI in `repo` as root without the capabilities that ignore file permissions. */
async function runWithoutDacOverride(repo: Repo, args: string[]): Promise<RunResult> {
  const deno = [Deno.execPath(), "run", "-A", "--quiet", MAIN, ...args];
  const cmd = Deno.uid() === 0
    ? ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--", ...deno]
    : deno;
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: repo.dir,
    env: cliEnv(),
    clearEnv: true,
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  const stdout = dec.decode(out.stdout);
  return {
    code: out.code,
    signal: out.signal,
    stdout,
    stderr: dec.decode(out.stderr),
    args,
    json: () => JSON.parse(stdout),
  };
}

const canDropDac = Deno.uid() !== 0 ||
  (await new Deno.Command("setpriv", { args: ["--bounding-set=-dac_override", "true"] }).output()
    .then((o) => o.success, () => false));
if (!canDropDac) {
  console.error(
    "tree_safety_test: skipping the permission test: running as root and setpriv cannot drop " +
      "CAP_DAC_OVERRIDE here, so file permissions would not apply.",
  );
}

Deno.test({
  name:
    "permission denied in the working tree is a one-line error naming the path (exit 2), nothing lost",
  ignore: !canDropDac,
  fn: async () => {
    await using sb = await Sandbox.create();
    const a = await sb.repo("a");
    const b = await sb.repo("b");
    await a.write("models/vpc/m1/a.txt", "v1\n");
    expectCode(await a.run(["push"]), 0, "push");
    expectCode(await b.run(["pull"]), 0, "pull");
    await a.write("models/vpc/m1/a.txt", "v2\n");
    await a.write("models/vpc/m1/new.txt", "new\n");
    expectCode(await a.run(["push"]), 0, "push v2");

    // b's model directory is read-only: the pull cannot land.
    const dir = b.modelDir("vpc/m1");
    await Deno.chmod(dir, 0o555);
    try {
      const pull = await runWithoutDacOverride(b, ["pull"]);
      const line = expectOneLineError(pull, 2, "pull into a read-only model directory");
      assert.match(line, /permission denied \(EACCES\)\. Fix its ownership or permissions/);
      assert.match(line, new RegExp(`Cannot use ${dir.replaceAll("/", "\\/")}`), describe(pull));
      assert.equal(await b.read("models/vpc/m1/a.txt"), "v1\n", "nothing changed");
      // An unreadable file stops a push the same way.
      await Deno.chmod(dir, 0o755);
      await b.write("models/vpc/m2/secret.txt", "secret\n");
      await Deno.chmod(b.path("models/vpc/m2/secret.txt"), 0o000);
      const push = await runWithoutDacOverride(b, ["push", "vpc/m2"]);
      const pushLine = expectOneLineError(push, 2, "push of an unreadable file");
      assert.match(pushLine, /secret\.txt: permission denied \(EACCES\)/, describe(push));
      assert.equal(await sb.datastore.current("vpc/m2"), null);
    } finally {
      await Deno.chmod(dir, 0o755).catch(() => {});
      await Deno.chmod(b.path("models/vpc/m2/secret.txt"), 0o644).catch(() => {});
    }
    // After the fix the pull completes.
    expectCode(await b.run(["pull"]), 0, "pull after the fix");
    assert.equal(await b.read("models/vpc/m1/a.txt"), "v2\n");
    assert.equal(await b.read("models/vpc/m1/new.txt"), "new\n");
  },
});

Deno.test("a name too long for the file system is a one-line error (exit 2) naming the path, nothing written", async () => {
  await using sb = await Sandbox.create();
  const b = await sb.repo("b");
  // 130 two-byte characters: 260 bytes, fine for a manifest (1024), over 255 for one name here.
  const long = "é".repeat(130);
  await plant(sb, "vpc/m1", 1, [
    { path: "a.txt", content: "a\n" },
    { path: `d/${long}`, content: "long\n" },
  ]);
  const pull = await b.run(["pull", "--json"]);
  expectCode(pull, 2, "pull of a name too long");
  const row = reportByModel(expectJson(pull, "modelsync.pull/1")).get("vpc/m1")!;
  assert.equal(row.status, "failed", describe(pull));
  assert.match(row.error!, /a name in it is too long for this file system \(ENAMETOOLONG\)/);
  assert.match(row.error!, new RegExp(`Cannot use .*/models/vpc/m1/d/${long}`));
  // Found before anything was downloaded or written.
  assert.deepEqual(await listFiles(b.path("models")), []);
  assert.deepEqual(await listFiles(b.path(".modelsync/tmp")), []);
  assert.equal(await exists(b.path(".modelsync/base/vpc/m1.json")), false, "no base written");
  const text = await b.run(["pull"]);
  const line = expectOneLineError(text, 2, "pull text");
  assert.match(line, /Move the repository to a shorter path, or rename the file in the datastore/);
});

/** Mounts a tmpfs of `size` at `dir` (root only); false when that is not possible here. */
async function mountTmpfs(dir: string, size: string): Promise<boolean> {
  const out = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
    stderr: "piped",
  }).output().catch(() => undefined);
  return out?.success === true;
}

async function umount(dir: string): Promise<void> {
  await new Deno.Command("umount", { args: [dir] }).output().catch(() => undefined);
}

const probeDir = await Deno.makeTempDir({ prefix: "modelsync-tmpfs-probe-" });
const canMount = await mountTmpfs(probeDir, "64k");
if (canMount) await umount(probeDir);
await Deno.remove(probeDir).catch(() => {});
if (!canMount) {
  console.error(
    "tree_safety_test: skipping the no-space test: cannot mount a small tmpfs here " +
      "(needs root); ENOSPC is not reproducible otherwise.",
  );
}

Deno.test({
  name:
    "no space left on the device is a one-line error naming the path and the remedy (exit 2); a rerun after freeing space completes",
  ignore: !canMount,
  fn: async () => {
    await using sb = await Sandbox.create();
    const a = await sb.repo("a");
    const big = pseudoRandomBytes(400_000, 3);
    await a.write("models/vpc/m1/small.txt", "small\n");
    await a.write("models/vpc/m1/big.bin", big);
    expectCode(await a.run(["push"]), 0, "push");

    const small = await sb.dir("small");
    assert.ok(await mountTmpfs(small, "128k"), "mount a 128 KiB tmpfs");
    try {
      expectCode(
        await sb.run(["init", "--datastore", sb.datastoreSpec], { cwd: small }),
        0,
        "init on the small disk",
      );
      const pull = await sb.run(["pull"], { cwd: small });
      const line = expectOneLineError(pull, 2, "pull onto a full disk");
      assert.match(
        line,
        /Cannot write \/.*\/\.modelsync\/tmp\/[0-9a-f-]+\.part: no space is left on the device \(ENOSPC\)\. Free space on that file system/,
        describe(pull),
      );
      // Nothing half-written: no file of the model landed, no download is left.
      assert.deepEqual(await listFiles(join(small, "models")), []);
      assert.deepEqual(await listFiles(join(small, ".modelsync/tmp")), []);
      assert.equal(await exists(join(small, ".modelsync/base/vpc/m1.json")), false);

      // Free space (grow the file system) and rerun: it completes.
      const grow = await new Deno.Command("mount", {
        args: ["-o", "remount,size=4m", small],
      }).output();
      assert.ok(grow.success, "remount with more space");
      expectCode(await sb.run(["pull"], { cwd: small }), 0, "pull after freeing space");
      assert.deepEqual(await Deno.readFile(join(small, "models/vpc/m1/big.bin")), big);
      assert.equal(await Deno.readTextFile(join(small, "models/vpc/m1/small.txt")), "small\n");
    } finally {
      await umount(small);
    }
  },
});

Deno.test({
  name: "a read-only working tree is a one-line error naming the path (exit 2)",
  ignore: !canMount,
  fn: async () => {
    await using sb = await Sandbox.create();
    const a = await sb.repo("a");
    await a.write("models/vpc/m1/a.txt", "a\n");
    expectCode(await a.run(["push"]), 0, "push");
    const ro = await sb.dir("ro");
    assert.ok(await mountTmpfs(ro, "1m"), "mount a tmpfs");
    try {
      expectCode(await sb.run(["init", "--datastore", sb.datastoreSpec], { cwd: ro }), 0, "init");
      const remount = await new Deno.Command("mount", { args: ["-o", "remount,ro", ro] }).output();
      assert.ok(remount.success, "remount read-only");
      const pull = await sb.run(["pull"], { cwd: ro });
      const line = expectOneLineError(pull, 2, "pull into a read-only repository");
      assert.match(
        line,
        new RegExp(
          `Cannot write ${ro}/\\S+: the file system is read-only \\(EROFS\\)\\. Mount it read-write`,
        ),
        describe(pull),
      );
      assert.deepEqual(await listFiles(join(ro, "models")), []);
    } finally {
      await umount(ro);
    }
  },
});

Deno.test("a directory swapped for a symlink while a pull lands files: the pull stops (exit 2), no later file is written through it", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  for (let i = 0; i < 6; i++) await a.write(`models/vpc/m1/d/f${i}.txt`, `file ${i}\n`);
  expectCode(await a.run(["push"]), 0, "push");
  const outside = await sb.dir("outside");
  const slow = slowStore(sb, { land: 400 });
  const pull = b.spawn(["pull", ...slow.args], { env: slow.env });
  await waitFor("the first file landed", async () => {
    if (pull.exited) throw new Error(`pull ended early\n${describe(await pull.done)}`);
    return await exists(b.path("models/vpc/m1/d/f0.txt"));
  });
  await Deno.rename(b.path("models/vpc/m1/d"), b.path("models/vpc/m1/d.moved"));
  await Deno.symlink(outside, b.path("models/vpc/m1/d"));
  const res = await pull.done;
  expectOneLineError(res, 2, "pull through a swapped directory");
  assert.match(res.stderr, /is a symlink/);
  // Each file's directories are checked right before its rename: only the file whose rename
  // was already under way when the directory was swapped can follow the link (the decorator
  // holds it for 400 ms at that moment; without it the window is microseconds). Every later
  // file is refused.
  const through = [...Deno.readDirSync(outside)].map((e) => e.name);
  assert.ok(through.length <= 1, `at most the file in flight: ${through.join(", ")}`);
});
