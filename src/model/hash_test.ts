import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  hashBytes,
  hashFile,
  hashSmallFileSync,
  JS_HASH_MAX_BYTES,
  readSmallFileSync,
  SMALL_FILE_BYTES,
} from "./hash.ts";

const ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

Deno.test("hashBytes is lowercase hex SHA-256", () => {
  assert.equal(hashBytes(new TextEncoder().encode("abc")), ABC);
  assert.equal(hashBytes(new Uint8Array()), EMPTY);
});

Deno.test("hashFile hashes empty, small and streamed large files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/abc`, "abc");
    await Deno.writeFile(`${dir}/empty`, new Uint8Array());
    assert.deepEqual(await hashFile(`${dir}/abc`), { sha256: ABC, size: 3 });
    assert.deepEqual(await hashFile(`${dir}/abc`, { sizeHint: 3 }), { sha256: ABC, size: 3 });
    assert.deepEqual(await hashFile(`${dir}/empty`), { sha256: EMPTY, size: 0 });

    const big = new Uint8Array(SMALL_FILE_BYTES + 123_457);
    for (let i = 0; i < big.length; i += 997) big[i] = i & 0xff;
    await Deno.writeFile(`${dir}/big`, big);
    const want = createHash("sha256").update(big).digest("hex");
    assert.deepEqual(await hashFile(`${dir}/big`), { sha256: want, size: big.length });
    // A stale small size hint still hashes the whole file.
    assert.deepEqual(await hashFile(`${dir}/big`, { sizeHint: 10 }), {
      sha256: want,
      size: big.length,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hashFile honours an aborted signal", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/abc`, "abc");
    const ctl = new AbortController();
    ctl.abort();
    await assert.rejects(hashFile(`${dir}/abc`, { signal: ctl.signal }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readSmallFileSync reads the whole file whatever the size hint says", async () => {
  const path = await Deno.makeTempFile();
  try {
    const bytes = new Uint8Array(5000).map((_, i) => i % 251);
    await Deno.writeFile(path, bytes);
    for (const hint of [5000, 0, 1, 4999, 5001, 100_000]) {
      assert.deepEqual(readSmallFileSync(path, hint), bytes, `hint ${hint}`);
    }
    assert.deepEqual(readSmallFileSync(path), bytes);
    assert.equal(hashSmallFileSync(path, 3).size, 5000);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("hashBytes agrees with node:crypto on both sides of the JavaScript/native switch", () => {
  const data = new Uint8Array(JS_HASH_MAX_BYTES + 70);
  for (let i = 0; i < data.length; i++) data[i] = (i * 131 + 7) & 0xff;
  for (const n of [0, 1, 55, 56, 63, 64, 65, 1024, JS_HASH_MAX_BYTES, JS_HASH_MAX_BYTES + 1]) {
    const bytes = data.subarray(0, n);
    assert.equal(hashBytes(bytes), createHash("sha256").update(bytes).digest("hex"), `n=${n}`);
  }
});

Deno.test("hashBytes and readSmallFileSync give the same results without FFI (the portable paths) as with it", async () => {
  const sizes = [0, 1, 64, 1024, JS_HASH_MAX_BYTES, JS_HASH_MAX_BYTES + 1, 100_000];
  const script = `
    import { hashBytes, readSmallFileSync } from ${
    JSON.stringify(new URL("./hash.ts", import.meta.url).href)
  };
    const me = Deno.readFileSync(import.meta.filename);
    for (const hint of [0, me.length, me.length + 10]) {
      if (hashBytes(readSmallFileSync(import.meta.filename, hint)) !== hashBytes(me)) {
        throw new Error("readSmallFileSync differs without FFI, hint " + hint);
      }
    }
    const out = [];
    for (const n of ${JSON.stringify(sizes)}) {
      out.push(hashBytes(new Uint8Array(n).map((_, i) => (i * 131 + 7) & 0xff)));
    }
    console.log(JSON.stringify([Deno.permissions.querySync({ name: "ffi" }).state, ...out]));`;
  const root = new URL("../../", import.meta.url).pathname;
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(file, script);
  // No --allow-ffi: the hash cannot take the native path.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--config", `${root}deno.json`, file],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output().finally(() => Deno.remove(file));
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const [ffi, ...portable] = JSON.parse(new TextDecoder().decode(out.stdout)) as string[];
  assert.notEqual(ffi, "granted");
  const here = sizes.map((n) => hashBytes(new Uint8Array(n).map((_, i) => (i * 131 + 7) & 0xff)));
  assert.deepEqual(portable, here);
  for (const [i, n] of sizes.entries()) {
    const bytes = new Uint8Array(n).map((_, i) => (i * 131 + 7) & 0xff);
    assert.equal(here[i], createHash("sha256").update(bytes).digest("hex"), `n=${n}`);
  }
});
