import assert from "node:assert/strict";
import { hostname } from "node:os";
import { ConflictError } from "../errors.ts";
import type { Manifest } from "../model/manifest.ts";
import type { ModelRef } from "../model/ref.ts";
import { filesystemProvider } from "../providers/filesystem/mod.ts";
import { conformanceChecks, runConformance } from "./conformance.ts";
import type {
  BlobSource,
  CallOptions,
  Capabilities,
  LockHandle,
  LockInfo,
  LockKey,
  ManifestListing,
  Provider,
  StoredManifest,
} from "./contract.ts";

/** Delegates to a provider; subclasses break one behaviour. Removes its dir on close. */
class Wrapped implements Provider {
  readonly type: string;
  readonly inner: Provider;
  readonly #dir: string;
  constructor(inner: Provider, dir: string) {
    this.inner = inner;
    this.type = inner.type;
    this.#dir = dir;
  }
  hasBlobs(h: string[], o?: CallOptions): Promise<Set<string>> {
    return this.inner.hasBlobs(h, o);
  }
  putBlob(h: string, s: BlobSource, o?: CallOptions): Promise<void> {
    return this.inner.putBlob(h, s, o);
  }
  getBlob(h: string, o?: CallOptions): Promise<ReadableStream<Uint8Array>> {
    return this.inner.getBlob(h, o);
  }
  listManifests(o?: CallOptions): Promise<ManifestListing[]> {
    return this.inner.listManifests(o);
  }
  getManifest(m: ModelRef, o?: CallOptions): Promise<StoredManifest | null> {
    return this.inner.getManifest(m, o);
  }
  commitManifest(m: ModelRef, e: number, man: Manifest, o?: CallOptions) {
    return this.inner.commitManifest(m, e, man, o);
  }
  lock(k: LockKey): LockHandle {
    return this.inner.lock(k);
  }
  listLocks(o?: CallOptions): Promise<LockInfo[]> {
    return this.inner.listLocks(o);
  }
  describe() {
    return this.inner.describe();
  }
  capabilities(): Capabilities {
    return this.inner.capabilities!();
  }
  open(o?: CallOptions) {
    return this.inner.open(o);
  }
  init(o?: CallOptions) {
    return this.inner.init(o);
  }
  async close(): Promise<void> {
    await this.inner.close();
    await Deno.remove(this.#dir, { recursive: true });
  }
}

/** Never reports a lost race: a fake compare-and-swap. */
class NeverConflicts extends Wrapped {
  override async commitManifest(m: ModelRef, e: number, man: Manifest, o?: CallOptions) {
    try {
      return await this.inner.commitManifest(m, e, man, o);
    } catch (err) {
      if (err instanceof ConflictError) return { version: String(e + 1) };
      throw err;
    }
  }
}

/** Declares nothing. */
class NoCapabilities extends Wrapped {
  override capabilities(): Capabilities {
    return null as never;
  }
}

function factoryOf(Kind: typeof Wrapped): () => Promise<Provider> {
  return async () => {
    const dir = await Deno.makeTempDir({ prefix: "modelsync-fs-conf-" });
    const inner = await filesystemProvider.create({ path: "store" }, {
      callTimeoutMs: 30_000,
      host: hostname(),
      pid: Deno.pid,
      skewMarginMs: 50,
      baseDir: dir,
    });
    await inner.init();
    return new Kind(inner, dir);
  };
}

Deno.test("filesystem provider passes the conformance kit", async (t) => {
  await runConformance(t, { name: "filesystem", factory: factoryOf(Wrapped) });
});

Deno.test("the kit fails a provider whose commit never conflicts", async () => {
  for (
    const name of ["concurrent committers: exactly one wins", "stale expected generation conflicts"]
  ) {
    const check = conformanceChecks.find((c) => c.name === name);
    assert.ok(check, name);
    await assert.rejects(
      check.run(factoryOf(NeverConflicts), { committers: 4 }),
      assert.AssertionError,
      name,
    );
  }
});

Deno.test("the kit fails a provider with null capabilities", async () => {
  const check = conformanceChecks.find((c) => c.name === "capabilities are sane");
  assert.ok(check);
  await assert.rejects(
    check.run(factoryOf(NoCapabilities), { committers: 4 }),
    assert.AssertionError,
  );
});
