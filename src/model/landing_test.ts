import assert from "node:assert/strict";
import { withTempDir } from "../_with_temp_dir.ts";
import { landingPath, readLanding, removeLanding, writeLanding } from "./landing.ts";

const m = { type: "@s/n", id: "m1" };
const st = (c: string) => ({ sha256: c.repeat(64), size: 1, executable: false });

Deno.test("landing journal: written, merged over an earlier one, read back, removed", async () => {
  await withTempDir(async (repo) => {
    assert.equal(await readLanding(repo, m), null);
    await writeLanding(repo, m, new Map([["a", st("1")], ["b", st("2")]]));
    await writeLanding(repo, m, new Map([["b", st("3")], ["c", null]]));
    assert.deepEqual(
      await readLanding(repo, m),
      new Map([["a", st("1")], ["b", st("3")], ["c", null]]),
    );
    await removeLanding(repo, m);
    await removeLanding(repo, m);
    assert.equal(await readLanding(repo, m), null);
  });
});

Deno.test("landing journal: an unreadable or unsafe one is ignored, never trusted", async () => {
  await withTempDir(async (repo) => {
    await writeLanding(repo, m, new Map([["a", st("1")]]));
    await Deno.writeTextFile(landingPath(repo, m), "{not json");
    assert.equal(await readLanding(repo, m), null);
    await Deno.writeTextFile(
      landingPath(repo, m),
      JSON.stringify({ format: 1, entries: [["../x", null]] }),
    );
    assert.equal(await readLanding(repo, m), null);
  });
});
