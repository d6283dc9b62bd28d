import assert from "node:assert/strict";
import { join } from "node:path";
import { withTempDir } from "../_with_temp_dir.ts";
import type { BaseState } from "../model/base.ts";
import { hashBytes } from "../model/hash.ts";
import { scanModel } from "../repo/scan.ts";
import { refreshedBase } from "./states.ts";

const M = { type: "vpc", id: "m1" };

Deno.test("refreshedBase: a file hashed once and found unchanged is not read again", async () => {
  await withTempDir(async (repo) => {
    const bytes = new TextEncoder().encode("same content\n");
    const file = join(repo, "models/vpc/m1/a.txt");
    await Deno.mkdir(join(repo, "models/vpc/m1"), { recursive: true });
    await Deno.writeFile(file, bytes);
    const hourAgo = new Date(Date.now() - 3_600_000);
    await Deno.utime(file, hourAgo, hourAgo);
    // The base remembers another mtime (the file was touched, or landed racily).
    const base: BaseState = {
      format: 1,
      model: "vpc/m1",
      generation: 1,
      version: "1",
      files: [{
        path: "a.txt",
        sha256: hashBytes(bytes),
        size: bytes.length,
        executable: false,
        mtimeMs: 1,
      }],
      syncedAtMs: Date.now() - 60_000,
    };
    const opts = { dataDir: "models", exclude: [] };
    const before = Date.now();
    const first = await scanModel(repo, M, { ...opts, base });
    assert.ok(first.startedAtMs >= before && first.startedAtMs <= Date.now());
    assert.equal(first.hashed, 1);
    assert.deepEqual(first.changes, { added: [], modified: [], deleted: [] });
    const fresh = refreshedBase(base, first);
    // The new base time is the scan's start, not the refresh's end: a file
    // written in the same tick as an mtime the scan read stays racy.
    assert.equal(fresh.syncedAtMs, first.startedAtMs);
    assert.equal(fresh.files[0].mtimeMs, hourAgo.getTime());
    const second = await scanModel(repo, M, { ...opts, base: fresh });
    assert.equal(second.hashed, 0, "read again after the refresh");
    assert.deepEqual(second.changes, { added: [], modified: [], deleted: [] });
  });
});
