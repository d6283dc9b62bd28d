import assert from "node:assert/strict";
import { CorruptError } from "../errors.ts";
import { assertCommitArgs, makeManifest, MAX_GENERATION } from "./manifest.ts";
import { parseModelRef } from "./ref.ts";

const M = parseModelRef("vpc/m1");
const BY = { holder: "dev", host: "h", pid: 1 };

Deno.test("assertCommitArgs accepts generation expected + 1 of the same model", () => {
  assertCommitArgs(M, 0, makeManifest(M, 1, [], BY));
  assertCommitArgs(M, 7, makeManifest(M, 8, [], BY));
});

Deno.test("assertCommitArgs refuses a bad expected generation, a skipped one, another model", () => {
  assert.throws(() => assertCommitArgs(M, -1, makeManifest(M, 0, [], BY)), /not valid/);
  assert.throws(
    () => assertCommitArgs(M, MAX_GENERATION, makeManifest(M, MAX_GENERATION + 1, [], BY)),
    /not valid/,
  );
  assert.throws(() => assertCommitArgs(M, 3, makeManifest(M, 3, [], BY)), /must be above/);
  assertCommitArgs(M, 1, makeManifest(M, 3, [], BY)); // above the next is fine
  const other = makeManifest(parseModelRef("vpc/m2"), 1, [], BY);
  assert.throws(() => assertCommitArgs(M, 0, other), /names model vpc\/m2/);
});

Deno.test("assertCommitArgs refuses a manifest readers would refuse (a path leaving the model)", () => {
  const bad = makeManifest(M, 1, [{
    path: "../x",
    sha256: "a".repeat(64),
    size: 1,
    executable: false,
  }], BY);
  assert.throws(() => assertCommitArgs(M, 0, bad), CorruptError);
});
