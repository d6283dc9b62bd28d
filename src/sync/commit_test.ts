import assert from "node:assert/strict";
import { ConflictError } from "../errors.ts";
import { makeManifest } from "../model/manifest.ts";
import type { Provider } from "../provider/contract.ts";
import { filesystemProvider } from "../providers/filesystem/mod.ts";
import { withTempDir } from "../_with_temp_dir.ts";
import { commitAt } from "./commit.ts";

const M = { type: "vpc", id: "m1" };
const BY = { holder: "t", host: "h", pid: 1 };
const FILES = [{ path: "a.txt", sha256: "a".repeat(64), size: 1, executable: false }];
const held = { assertHeld() {} };

async function store(dir: string): Promise<Provider> {
  const p = await filesystemProvider.create({ path: "store" }, {
    callTimeoutMs: 30_000,
    host: "h",
    pid: Deno.pid,
    skewMarginMs: 50,
    baseDir: dir,
  });
  await p.init();
  return p;
}

Deno.test("commitAt goes above a lost base one compare-and-swap at a time; every step holds the new files", async () => {
  await withTempDir(async (dir) => {
    const p = await store(dir);
    await p.commitManifest(M, 0, makeManifest(M, 1, [], BY));
    const s = { provider: p, identity: BY };
    const signal = new AbortController().signal;
    const res = await commitAt(s, M, {
      expected: 1,
      target: 4,
      entries: FILES,
      lease: held,
      signal,
    });
    assert.equal(res.manifest.generation, 4);
    const head = await p.getManifest(M);
    assert.equal(head?.manifest.generation, 4);
    assert.equal(head?.version, res.version);
    assert.deepEqual(head?.manifest.files, FILES);
    // A stale first step is a lost race, as for any commit.
    await assert.rejects(
      commitAt(s, M, { expected: 1, target: 6, entries: [], lease: held, signal }),
      ConflictError,
    );
    await p.close();
  });
});

Deno.test("commitAt: another writer committing on top mid-way leaves the commit at the generation reached", async () => {
  await withTempDir(async (dir) => {
    const p = await store(dir);
    let steps = 0;
    // After our first step lands, another writer commits generation 2 on top of it.
    const racing: Provider = Object.assign(Object.create(p), {
      async commitManifest(...args: Parameters<Provider["commitManifest"]>) {
        if (++steps === 2) {
          await p.commitManifest(M, 1, makeManifest(M, 2, [], { ...BY, holder: "other" }));
        }
        return await p.commitManifest(...args);
      },
    });
    const res = await commitAt({ provider: racing, identity: BY }, M, {
      expected: 0,
      target: 5,
      entries: FILES,
      lease: held,
      signal: new AbortController().signal,
    });
    assert.equal(res.manifest.generation, 1, "ours stands at generation 1");
    assert.deepEqual(res.manifest.files, FILES);
    assert.equal((await p.getManifest(M))?.manifest.committedBy.holder, "other");
    await p.close();
  });
});
