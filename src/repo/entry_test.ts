import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { withTempDir } from "../_with_temp_dir.ts";
import { lstatEntry } from "./entry.ts";

Deno.test("lstatEntry: files, directories and links as lstat sees them; null where nothing is", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "f"), "hi");
    await Deno.mkdir(join(dir, "d"));
    await Deno.symlink(join(dir, "nowhere"), join(dir, "dangling"));
    await Deno.symlink(join(dir, "d"), join(dir, "to-d"));
    assert.equal(lstatEntry(join(dir, "f"))?.isFile, true);
    assert.equal(lstatEntry(join(dir, "f"))?.size, 2);
    assert.equal(lstatEntry(join(dir, "d"))?.isDirectory, true);
    // A link is the entry itself, dangling or not: never followed.
    assert.equal(lstatEntry(join(dir, "dangling"))?.isSymlink, true);
    assert.equal(lstatEntry(join(dir, "to-d"))?.isSymlink, true);
    assert.equal(lstatEntry(join(dir, "missing")), null);
    assert.equal(lstatEntry(join(dir, "missing", "deeper")), null);
    assert.equal(lstatEntry(join(dir, "f", "under-a-file")), null); // ENOTDIR
    // A name too long is the file system's error, as lstat throws it (also with a path too
    // long for the probe's buffer): callers report it, never read it as "nothing there".
    for (const n of [300, 5000]) {
      assert.throws(
        () => lstatEntry(join(dir, "x".repeat(n))),
        (err: Error & { code?: string }) => err.code === "ENAMETOOLONG",
      );
    }
  });
});

Deno.test({
  name: "lstatEntry: a failure other than absence is thrown, not read as 'nothing there'",
  ignore: Deno.uid() === 0, // root reads every directory
  fn: async () => {
    await withTempDir(async (dir) => {
      await Deno.mkdir(join(dir, "closed"));
      await Deno.writeTextFile(join(dir, "closed", "f"), "hi");
      await Deno.chmod(join(dir, "closed"), 0o000);
      try {
        assert.throws(() => lstatEntry(join(dir, "closed", "f")), Deno.errors.PermissionDenied);
      } finally {
        await Deno.chmod(join(dir, "closed"), 0o755);
      }
    });
  },
});

Deno.test({
  name: "lstatEntry: without FFI permission it answers by lstat and never prompts on a terminal",
  // A terminal is needed for Deno to prompt at all: script(1) gives the child one.
  ignore: Deno.build.os !== "linux" || !existsSync("/usr/bin/script"),
  fn: async () => {
    await withTempDir(async (dir) => {
      const prog = join(dir, "probe.ts");
      await Deno.writeTextFile(
        prog,
        `import { lstatEntry } from ${
          JSON.stringify(new URL("./entry.ts", import.meta.url).href)
        };\n` +
          `console.log("missing:", lstatEntry(${JSON.stringify(join(dir, "nope"))}));\n` +
          `console.log("dir:", lstatEntry(${JSON.stringify(dir)})?.isDirectory);\n`,
      );
      const cmd = `${Deno.execPath()} run --quiet --allow-read ${prog}`;
      const out = await new Deno.Command("/usr/bin/script", {
        args: ["-qec", cmd, "/dev/null"],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
        signal: AbortSignal.timeout(15_000),
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.doesNotMatch(text, /requests ffi/i, text);
      assert.match(text, /missing: null/, text);
      assert.match(text, /dir: true/, text);
    });
  },
});

Deno.test("lstatEntry: size, mtime and inode are what Deno.lstatSync reports (a record's token is made of them)", async () => {
  await withTempDir(async (dir) => {
    const f = join(dir, "f");
    await Deno.writeFile(f, new Uint8Array(123_457));
    // A time with a sub-millisecond part, and one before 1970.
    for (const when of [new Date(1_700_000_000_123.75), new Date(-86_400_000 + 5)]) {
      await Deno.utime(f, when, when);
      const want = Deno.lstatSync(f);
      const got = lstatEntry(f)!;
      assert.equal(got.size, want.size);
      assert.equal(got.mtime?.getTime(), want.mtime?.getTime());
      assert.equal(got.ino, want.ino);
      assert.equal(got.isFile, true);
      assert.equal(got.isDirectory || got.isSymlink, false);
    }
  });
});
