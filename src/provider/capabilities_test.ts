import assert from "node:assert/strict";
import { NO_CAPABILITIES, parseDisabledCaps, readCapabilities } from "./capabilities.ts";

const SCOPED = {
  scopedSync: true,
  atomicCommit: true,
  serverTime: true,
  rangedReads: false,
  maxConcurrency: 16,
};

Deno.test("capabilities: declared ones are read as plain data, --disable-cap turns one off", () => {
  const r = readCapabilities({ type: "x", capabilities: () => ({ ...SCOPED }) }, [
    "scopedSync",
  ]);
  assert.deepEqual(r.caps, { ...SCOPED, scopedSync: false });
  assert.deepEqual(r.declared, SCOPED);
  assert.deepEqual(r.warnings, []);
});

Deno.test("capabilities: a provider's stated limitation becomes a warning, escaped", () => {
  const r = readCapabilities({
    type: "s3",
    capabilities: () => ({
      ...NO_CAPABILITIES,
      limitation: "The endpoint ignores conditional writes\n\u001b[31m",
    }),
  }, []);
  assert.equal(r.caps.scopedSync, false);
  assert.deepEqual(r.warnings, ["The endpoint ignores conditional writes\\n\\x1b[31m"]);
});

Deno.test("capabilities: scopedSync without atomicCommit falls back to the global path with a warning", () => {
  const r = readCapabilities({
    type: "x",
    capabilities: () => ({ ...SCOPED, atomicCommit: false }),
  }, []);
  assert.equal(r.caps.scopedSync, false);
  assert.match(r.warnings[0], /scopedSync without atomicCommit/);
});

Deno.test("capabilities: --disable-cap names are checked", () => {
  assert.deepEqual(parseDisabledCaps(["serverTime", "serverTime"]), ["serverTime"]);
  assert.throws(() => parseDisabledCaps(["fast"]), /Unknown capability "fast"/);
});
