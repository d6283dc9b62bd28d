import assert from "node:assert/strict";
import { UsageError } from "../errors.ts";
import type { ProviderContext } from "../provider/contract.ts";
import { createProvider, loadProviderModule, PROVIDER_TYPES } from "./mod.ts";

const CTX: ProviderContext = {
  callTimeoutMs: 30_000,
  host: "h",
  pid: 1,
  baseDir: "/repo",
};

async function usage(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof UsageError, `expected UsageError, got ${err}`);
  assert.equal(err.exitCode, 2);
  assert.ok(!err.message.includes("\n"), err.message);
  return err.message;
}

Deno.test("loadProviderModule: filesystem, s3, postgres, azure and module load, others unknown", async () => {
  assert.equal((await loadProviderModule("filesystem")).type, "filesystem");
  assert.equal((await loadProviderModule("s3")).type, "s3");
  assert.equal((await loadProviderModule("postgres")).type, "postgres");
  assert.equal((await loadProviderModule("azure")).type, "azure");
  assert.equal((await loadProviderModule("module")).type, "module");
  assert.deepEqual([...PROVIDER_TYPES], ["filesystem", "s3", "postgres", "azure", "module"]);
  // Hints offer only what this version can open.
  const ftp = await usage(loadProviderModule("ftp"));
  assert.match(ftp, /"ftp".*filesystem, s3, postgres, azure, or type module/);
});

Deno.test("createProvider: resolves a relative path against baseDir", async () => {
  const p = await createProvider({ type: "filesystem", path: "store" }, CTX);
  assert.deepEqual(p.describe(), { type: "filesystem", location: "/repo/store" });
  const abs = await createProvider({ type: "filesystem", path: "/data/ms" }, CTX);
  assert.equal(abs.describe().location, "/data/ms");
});

Deno.test("createProvider: config errors are one-line UsageErrors naming the key", async () => {
  assert.equal(
    await usage(createProvider({ type: "filesystem" }, CTX)),
    'Invalid datastore config in modelsync.yaml: "path" is required.',
  );
  assert.match(
    await usage(createProvider({ type: "filesystem", path: "/x", bucket: "b" }, CTX)),
    /unknown key "bucket"; remove it\.$/,
  );
  assert.match(
    await usage(createProvider({ type: "filesystem", path: 42 }, CTX)),
    /^Invalid datastore config in modelsync\.yaml: "path": /,
  );
  assert.match(await usage(createProvider({ type: "" }, CTX)), /"type" is required/);
});
