import assert from "node:assert/strict";
import { hostname } from "node:os";
import { filesystemProvider } from "../providers/filesystem/mod.ts";
import { MEMORY_SCOPED_CAPS, MemoryLockStore, MemoryProvider } from "../lock/_memory_provider.ts";
import { conformanceChecks, runConformance } from "./conformance.ts";
import type { Provider } from "./contract.ts";

/** A fresh filesystem store, removed when closed. */
async function freshFilesystem(): Promise<Provider> {
  const dir = await Deno.makeTempDir({ prefix: "modelsync-conf-fs-" });
  const p = await filesystemProvider.create({ path: dir }, {
    callTimeoutMs: 10_000,
    host: hostname(),
    pid: Deno.pid,
    baseDir: "/",
  });
  await p.init();
  const close = p.close.bind(p);
  p.close = async () => {
    await close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return p;
}

Deno.test("the filesystem provider passes the conformance kit", async (t) => {
  await runConformance(t, { name: "filesystem", factory: freshFilesystem });
});

Deno.test("the in-memory test provider passes the conformance kit", async (t) => {
  await runConformance(t, {
    name: "memory",
    factory: () => Promise.resolve(new MemoryProvider(new MemoryLockStore(), MEMORY_SCOPED_CAPS)),
  });
});

Deno.test("the kit fails a store whose conditional writes always win", async () => {
  const broken = () => {
    const store = new MemoryLockStore();
    store.honoursConditions = false;
    return Promise.resolve(new MemoryProvider(store, MEMORY_SCOPED_CAPS) as Provider);
  };
  const ctx = { contenders: 8, expiryWaitMs: 650, caps: MEMORY_SCOPED_CAPS };
  const failed: string[] = [];
  for (const check of conformanceChecks) {
    try {
      await check.run(broken, ctx);
    } catch {
      failed.push(check.name);
    }
  }
  for (
    const name of [
      "records: concurrent conditional writers, exactly one wins",
      "records: create, get, replace, delete",
      "commits: concurrent committers, exactly one wins",
      "locks: concurrent takeovers, exactly one wins",
      "caps --probe passes every check",
    ]
  ) {
    assert.ok(failed.includes(name), `the kit passed "${name}" on a broken store`);
  }
});
