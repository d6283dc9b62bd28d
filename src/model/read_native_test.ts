import assert from "node:assert/strict";
import { join } from "node:path";
import { withTempDir } from "../_with_temp_dir.ts";
import { readFileNative } from "./read_native.ts";

const native = Deno.build.os === "linux";

Deno.test({
  name: "readFileNative: whole files whatever the hint, at most max bytes, NotFound when missing",
  ignore: !native,
  fn: async () => {
    await withTempDir(async (dir) => {
      const f = join(dir, "f");
      const bytes = new Uint8Array(10_000).map((_, i) => (i * 7 + 3) & 0xff);
      await Deno.writeFile(f, bytes);
      for (const sizeHint of [0, 1, 9_999, 10_000, 10_001, 50_000]) {
        assert.deepEqual(readFileNative(f, { sizeHint }), bytes, `hint ${sizeHint}`);
      }
      // A file that grew since its size was seen is read up to max only.
      assert.deepEqual(readFileNative(f, { sizeHint: 100, max: 101 }), bytes.subarray(0, 101));
      assert.deepEqual(readFileNative(f, { sizeHint: 0, max: 1 }), bytes.subarray(0, 1));
      await Deno.writeFile(join(dir, "empty"), new Uint8Array());
      assert.deepEqual(readFileNative(join(dir, "empty"), { sizeHint: 0 }), new Uint8Array());
      // A link is followed, as Deno.openSync follows it.
      await Deno.symlink(f, join(dir, "link"));
      assert.deepEqual(readFileNative(join(dir, "link"), { sizeHint: 10_000 }), bytes);
      assert.throws(
        () => readFileNative(join(dir, "missing"), { sizeHint: 1 }),
        Deno.errors.NotFound,
      );
      // Anything else is left to Deno's calls, which report it.
      assert.equal(readFileNative(dir, { sizeHint: 1 }), undefined);
      assert.equal(readFileNative(join(dir, "x".repeat(5000)), { sizeHint: 1 }), undefined);
    });
  },
});
