import assert from "node:assert/strict";
import { join } from "node:path";
import { ConflictError, CorruptError, UsageError } from "../errors.ts";
import { hashBytes } from "../model/hash.ts";
import type { ModelRef } from "../model/ref.ts";
import {
  cleanTmp,
  type DirId,
  downloadToTmp,
  placeFile,
  placeLink,
  removeFile,
  tmpDir,
} from "./apply.ts";
import { withTempDir } from "../_with_temp_dir.ts";

const M: ModelRef = { type: "@acme/vpc", id: "m1" };
const OPTS = { dataDir: "models" };

function streamOf(...chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return ReadableStream.from(chunks.map((c) => enc.encode(c)));
}

async function tmpNames(repo: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(tmpDir(repo)))).map((e) => e.name);
  } catch {
    return [];
  }
}

async function download(repo: string, text: string): Promise<string> {
  const bytes = new TextEncoder().encode(text);
  return await downloadToTmp(repo, streamOf(text), {
    sha256: hashBytes(bytes),
    size: bytes.length,
  });
}

Deno.test("downloadToTmp lands verified content in .modelsync/tmp", async () => {
  await withTempDir(async (repo) => {
    const bytes = new TextEncoder().encode("hello world");
    const path = await downloadToTmp(repo, streamOf("hello ", "world"), {
      sha256: hashBytes(bytes),
      size: bytes.length,
    });
    assert.ok(path.startsWith(tmpDir(repo) + "/"));
    assert.equal(await Deno.readTextFile(path), "hello world");
  });
});

Deno.test("downloadToTmp refuses a blob that does not match, leaving nothing", async () => {
  await withTempDir(async (repo) => {
    const good = new TextEncoder().encode("good");
    const expected = { sha256: hashBytes(good), size: good.length };
    for (const body of [["evil"], ["goo"], ["good", "!"], ["go", "od and more"]]) {
      await assert.rejects(downloadToTmp(repo, streamOf(...body), expected), (err: unknown) => {
        assert.ok(err instanceof CorruptError);
        assert.equal(err.exitCode, 6);
        assert.equal(
          err.message,
          `Blob ${expected.sha256} in the datastore is corrupt (its content does not match its hash); ` +
            `nothing was written. Delete that blob from the datastore, then push the model again ` +
            `from a repository that has the file.`,
        );
        return true;
      });
    }
    assert.deepEqual(await tmpNames(repo), []);
  });
});

Deno.test("downloadToTmp removes its file when the stream fails or the signal aborts", async () => {
  await withTempDir(async (repo) => {
    const failing = new ReadableStream<Uint8Array>({
      pull(ctl) {
        ctl.error(new Error("connection reset"));
      },
    });
    await assert.rejects(downloadToTmp(repo, failing, { sha256: "0".repeat(64), size: 1 }));
    const ctl = new AbortController();
    ctl.abort();
    await assert.rejects(
      downloadToTmp(repo, streamOf("x"), { sha256: "0".repeat(64), size: 1 }, {
        signal: ctl.signal,
      }),
    );
    assert.deepEqual(await tmpNames(repo), []);
  });
});

Deno.test("placeFile lands by rename with the right mode and reports mtime and size", async () => {
  await withTempDir(async (repo) => {
    const tmp = await download(repo, "#!/bin/sh\n");
    const landed = await placeFile(repo, M, { path: "bin/run.sh", executable: true }, tmp, OPTS);
    const target = join(repo, "models/@acme/vpc/m1/bin/run.sh");
    const info = await Deno.lstat(target);
    assert.equal(info.mode! & 0o777, 0o755);
    assert.deepEqual(landed, { mtimeMs: info.mtime!.getTime(), size: 10 });
    assert.deepEqual(await tmpNames(repo), []);

    // Replacing an existing file, now not executable.
    const tmp2 = await download(repo, "echo\n");
    await placeFile(repo, M, { path: "bin/run.sh", executable: false }, tmp2, OPTS);
    assert.equal(await Deno.readTextFile(target), "echo\n");
    assert.equal((await Deno.lstat(target)).mode! & 0o777, 0o644);
  });
});

Deno.test("placeFile lands 0644 and 0755 whatever the umask, small and large downloads", async () => {
  await withTempDir(async (repo) => {
    const old = Deno.umask(0o077);
    try {
      const large = "x".repeat(2 * 1024 * 1024);
      for (const [i, text] of ["small\n", large].entries()) {
        for (const executable of [false, true]) {
          const path = `m${i}-${executable}`;
          await placeFile(repo, M, { path, executable }, await download(repo, text), OPTS);
          const mode = (await Deno.lstat(join(repo, "models/@acme/vpc/m1", path))).mode! & 0o777;
          assert.equal(mode, executable ? 0o755 : 0o644, path);
        }
      }
    } finally {
      Deno.umask(old);
    }
  });
});

Deno.test("placeFile refuses escaping paths and writes nothing", async () => {
  await withTempDir(async (repo) => {
    for (const path of ["../evil", "a/../../evil", "/etc/evil", "a//b", "a\\b", "", "./a"]) {
      const tmp = await download(repo, "evil");
      await assert.rejects(
        placeFile(repo, M, { path, executable: false }, tmp, OPTS),
        CorruptError,
        path,
      );
      await Deno.remove(tmp);
    }
    const left = await Array.fromAsync(Deno.readDir(repo));
    assert.deepEqual(left.map((e) => e.name), [".modelsync"]);
  });
});

Deno.test("placeFile never writes through a symlink inside the model dir", async () => {
  await withTempDir(async (repo) => {
    const outside = await Deno.makeTempDir();
    try {
      await Deno.mkdir(join(repo, "models/@acme/vpc/m1"), { recursive: true });
      await Deno.symlink(outside, join(repo, "models/@acme/vpc/m1/sub"));
      const tmp = await download(repo, "x");
      await assert.rejects(
        placeFile(repo, M, { path: "sub/a.txt", executable: false }, tmp, OPTS),
        UsageError,
      );
      assert.deepEqual(await Array.fromAsync(Deno.readDir(outside)), []);

      // A symlinked model directory is refused too.
      await Deno.remove(join(repo, "models/@acme/vpc/m1"), { recursive: true });
      await Deno.symlink(outside, join(repo, "models/@acme/vpc/m1"));
      await assert.rejects(
        placeFile(repo, M, { path: "a.txt", executable: false }, tmp, OPTS),
        UsageError,
      );
      assert.deepEqual(await Array.fromAsync(Deno.readDir(outside)), []);

      // A symlink at the target itself is replaced, not written through.
      await Deno.remove(join(repo, "models/@acme/vpc/m1"));
      await Deno.mkdir(join(repo, "models/@acme/vpc/m1"));
      await Deno.writeTextFile(join(outside, "victim"), "safe");
      await Deno.symlink(join(outside, "victim"), join(repo, "models/@acme/vpc/m1/a.txt"));
      await placeFile(repo, M, { path: "a.txt", executable: false }, tmp, OPTS);
      assert.equal(await Deno.readTextFile(join(outside, "victim")), "safe");
      assert.ok((await Deno.lstat(join(repo, "models/@acme/vpc/m1/a.txt"))).isFile);
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  });
});

Deno.test("placeFile reports a file or directory in the way as a conflict", async () => {
  await withTempDir(async (repo) => {
    await Deno.mkdir(join(repo, "models/@acme/vpc/m1/dir"), { recursive: true });
    await Deno.writeTextFile(join(repo, "models/@acme/vpc/m1/file"), "mine");
    const tmp = await download(repo, "x");
    await assert.rejects(
      placeFile(repo, M, { path: "file/a.txt", executable: false }, tmp, OPTS),
      ConflictError,
    );
    await assert.rejects(
      placeFile(repo, M, { path: "dir", executable: false }, tmp, OPTS),
      ConflictError,
    );
    await Deno.writeTextFile(join(repo, "models/@acme/vpc/m1/dir/inside"), "kept");
    await assert.rejects(
      placeFile(repo, M, { path: "dir", executable: false }, tmp, OPTS),
      ConflictError,
    );
    assert.equal(await Deno.readTextFile(join(repo, "models/@acme/vpc/m1/dir/inside")), "kept");
    assert.equal(await Deno.readTextFile(join(repo, "models/@acme/vpc/m1/file")), "mine");
  });
});

Deno.test("removeFile deletes the file and empty parents, not the model dir", async () => {
  await withTempDir(async (repo) => {
    const dir = join(repo, "models/@acme/vpc/m1");
    await Deno.mkdir(join(dir, "a/b/c"), { recursive: true });
    await Deno.mkdir(join(dir, "a/keep"), { recursive: true });
    await Deno.writeTextFile(join(dir, "a/b/c/f.txt"), "x");
    await Deno.writeTextFile(join(dir, "top.txt"), "x");
    await removeFile(repo, M, "a/b/c/f.txt", OPTS);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(join(dir, "a")))).map((e) => e.name), [
      "keep",
    ]);
    await removeFile(repo, M, "top.txt", OPTS);
    await removeFile(repo, M, "top.txt", OPTS); // missing is fine
    await removeFile(repo, M, "never/was.txt", OPTS);
    assert.ok((await Deno.stat(dir)).isDirectory);
    await assert.rejects(removeFile(repo, M, "../x", OPTS), CorruptError);
  });
});

Deno.test("removeFile never deletes through a symlinked directory", async () => {
  await withTempDir(async (repo) => {
    const outside = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(join(outside, "f.txt"), "precious");
      await Deno.mkdir(join(repo, "models/@acme/vpc/m1"), { recursive: true });
      await Deno.symlink(outside, join(repo, "models/@acme/vpc/m1/sub"));
      await assert.rejects(removeFile(repo, M, "sub/f.txt", OPTS), UsageError);
      assert.equal(await Deno.readTextFile(join(outside, "f.txt")), "precious");
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  });
});

Deno.test("cleanTmp removes leftovers of killed runs", async () => {
  await withTempDir(async (repo) => {
    await cleanTmp(repo); // nothing there: fine
    await download(repo, "left over");
    await cleanTmp(repo);
    assert.deepEqual(await tmpNames(repo), []);
  });
});

Deno.test("placeLink makes the exact link, replaces a file or link in place, never writes through", async () => {
  await withTempDir(async (repo) => {
    const outside = await Deno.makeTempDir();
    try {
      const dir = join(repo, "models/@acme/vpc/m1");
      const victim = join(outside, "victim.txt");
      await Deno.writeTextFile(victim, "untouched");
      await placeLink(repo, M, { path: "sub/l", link: "../a.txt" }, OPTS);
      assert.equal(await Deno.readLink(join(dir, "sub/l")), "../a.txt");
      // A link in the way (even one pointing outside) is replaced, not written through.
      await Deno.symlink(victim, join(dir, "x"));
      await placeLink(repo, M, { path: "x", link: "sub/l" }, OPTS);
      assert.equal(await Deno.readLink(join(dir, "x")), "sub/l");
      // A link becomes a file: the rename replaces the link itself.
      await Deno.remove(join(dir, "x"));
      await Deno.symlink(victim, join(dir, "x"));
      await placeFile(repo, M, { path: "x", executable: false }, await download(repo, "new"), OPTS);
      assert.equal((await Deno.lstat(join(dir, "x"))).isFile, true);
      assert.equal(await Deno.readTextFile(join(dir, "x")), "new");
      // A file becomes a link.
      await placeLink(repo, M, { path: "x", link: "a.txt" }, OPTS);
      assert.equal(await Deno.readLink(join(dir, "x")), "a.txt");
      assert.equal(await Deno.readTextFile(victim), "untouched");
      // A target leaving the model is refused; nothing is made.
      await assert.rejects(placeLink(repo, M, { path: "y", link: "../../x" }, OPTS), CorruptError);
      await assert.rejects(placeLink(repo, M, { path: "y", link: "/etc" }, OPTS), CorruptError);
      assert.equal(await Deno.lstat(join(dir, "y")).catch(() => null), null);
      // A directory in the way is a conflict; a symlinked parent is refused.
      await Deno.mkdir(join(dir, "d"));
      await assert.rejects(placeLink(repo, M, { path: "d", link: "a.txt" }, OPTS), ConflictError);
      await Deno.symlink(outside, join(dir, "p"));
      await assert.rejects(placeLink(repo, M, { path: "p/z", link: "q" }, OPTS), UsageError);
      assert.deepEqual((await Array.fromAsync(Deno.readDir(outside))).map((e) => e.name), [
        "victim.txt",
      ]);
      assert.deepEqual(await tmpNames(repo), [], "no temporary link is left behind");
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  });
});

Deno.test("placeFile with verifiedDirs: a checked directory swapped for a symlink is refused; one made anew is checked again", async () => {
  await withTempDir(async (repo) => {
    const outside = await Deno.makeTempDir();
    try {
      const verifiedDirs = new Map<string, DirId>();
      const opts = { ...OPTS, verifiedDirs };
      const dir = join(repo, "models/@acme/vpc/m1/sub");
      await placeFile(
        repo,
        M,
        { path: "sub/a", executable: false },
        await download(repo, "a"),
        opts,
      );
      assert.equal(verifiedDirs.size, 1);
      await placeFile(
        repo,
        M,
        { path: "sub/b", executable: false },
        await download(repo, "b"),
        opts,
      );
      // Swapped for a link to a directory outside: refused, nothing written there.
      await Deno.rename(dir, join(outside, "moved"));
      await Deno.symlink(outside, dir);
      await assert.rejects(
        placeFile(repo, M, { path: "sub/c", executable: false }, await download(repo, "c"), opts),
        UsageError,
      );
      assert.deepEqual((await Array.fromAsync(Deno.readDir(outside))).map((e) => e.name), [
        "moved",
      ]);
      // A directory made anew in its place is checked level by level, then used.
      await Deno.remove(dir);
      await Deno.mkdir(dir);
      await placeFile(
        repo,
        M,
        { path: "sub/d", executable: false },
        await download(repo, "d"),
        opts,
      );
      assert.equal(await Deno.readTextFile(join(dir, "d")), "d");
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  });
});
