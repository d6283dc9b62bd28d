import assert from "node:assert/strict";
import { join } from "node:path";
import { DatastoreError, NotFoundError, UsageError } from "../../errors.ts";
import { moduleProvider } from "./mod.ts";

const context = (baseDir: string) => ({ callTimeoutMs: 1_000, host: "h", pid: 1, baseDir });

/**
 * A module with no imports: its errors are of its own making, as those of a
 * module that bundles another copy of @modelsync/cli would be.
 */
const FOREIGN = `
class NotFoundError extends Error {
  code = "not-found";
  exitCode = 3;
}
class DatastoreError extends Error {
  code = "datastore";
  exitCode = 6;
  retryable = true;
}
const fail = (err) => () => Promise.reject(err);
export const provider = {
  type: "foreign",
  configSchema: { safeParse: (v) => ({ success: true, data: v }) },
  create: () => ({
    type: "foreign",
    getBlob: fail(new NotFoundError("no blob here")),
    listRecords: fail(new DatastoreError("the cluster is busy")),
    getRecord: fail(new TypeError("cannot read properties of undefined\\nsecond line")),
    // One of our own errors (set by the test) passes through untouched.
    createRecord: fail(globalThis.kept),
    describe: () => ({ type: "foreign", location: "nowhere" }),
  }),
};
`;

Deno.test("a module provider's errors become modelsync's own; capabilities() stays missing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "modelsync-module-" });
  try {
    const kept = new UsageError("kept as it is");
    (globalThis as { kept?: unknown }).kept = kept;
    await Deno.writeTextFile(join(dir, "foreign.ts"), FOREIGN);
    const p = await moduleProvider.create({ module: "./foreign.ts", config: {} }, context(dir));
    assert.equal(p.type, "foreign");
    assert.equal(p.capabilities, undefined, "a missing capabilities() must stay missing");
    const blob = await p.getBlob("ab").catch((e) => e);
    assert.ok(blob instanceof NotFoundError, `getBlob: ${blob}`);
    assert.equal(blob.message, "no blob here");
    const list = await p.listRecords("").catch((e) => e);
    assert.ok(list instanceof DatastoreError && list.retryable, `listRecords: ${list}`);
    const rec = await p.getRecord("k").catch((e) => e);
    assert.ok(rec instanceof DatastoreError && !rec.retryable, `getRecord: ${rec}`);
    assert.equal(
      rec.message,
      "The provider module ./foreign.ts failed getRecord: cannot read properties of undefined.",
    );
    assert.equal(await p.createRecord("k", new Uint8Array([1])).catch((e) => e), kept);
  } finally {
    delete (globalThis as { kept?: unknown }).kept;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("create() returning nothing is a usage error naming the module", async () => {
  const dir = await Deno.makeTempDir({ prefix: "modelsync-module-" });
  try {
    await Deno.writeTextFile(
      join(dir, "empty.ts"),
      `export default { type: "e", configSchema: { safeParse: (v) => ({ success: true, data: v }) }, create: () => undefined };\n`,
    );
    await assert.rejects(
      async () => await moduleProvider.create({ module: "./empty.ts", config: {} }, context(dir)),
      (e: unknown) =>
        e instanceof UsageError && /module \.\/empty\.ts returned no provider/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
