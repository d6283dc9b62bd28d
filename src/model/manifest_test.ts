import assert from "node:assert/strict";
import { CorruptError } from "../errors.ts";
import {
  assertCommitArgs,
  fileSchema,
  makeManifest,
  MAX_GENERATION,
  parseManifest,
  plainFileEntry,
} from "./manifest.ts";
import { hashBytes } from "./hash.ts";
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

Deno.test("parseManifest accepts links that stay inside and refuses the rest as corrupt", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const link = (path: string, target: string) => ({
    path,
    sha256: hashBytes(enc(target)),
    size: enc(target).length,
    executable: false,
    link: target,
  });
  const file = { path: "v2/w.bin", sha256: "a".repeat(64), size: 1, executable: false };
  const ok = parseManifest(makeManifest(M, 1, [file, link("latest", "v2")], BY), M);
  assert.deepEqual(ok.files.map((f) => f.link), ["v2", undefined]);
  const refused: [unknown[], RegExp][] = [
    [[link("x", "../../etc")], /"x": it is a symlink to \.\.\/\.\.\/etc that leaves the model/],
    [[link("x", "/etc/passwd")], /"x": it is a link, but its target is absolute/],
    [[link("self", "."), link("a", "self/../x")], /"a": it is a symlink to self\/\.\.\/x/],
    [[link("a", "b"), link("b", "a")], /symlink loop/],
    [[{ ...link("x", "y"), size: 9 }], /do not describe its target/],
    [[{ ...file, path: "sub/.modelsync/x" }], /\.modelsync segment/],
    [[{ ...file, path: "a\ud800" }], /well-formed/],
  ];
  for (const [files, re] of refused) {
    const m = { ...makeManifest(M, 1, [], BY), files };
    assert.throws(
      () => parseManifest(m, M),
      (err: Error) => err instanceof CorruptError && re.test(err.message),
    );
  }
});

Deno.test("plainFileEntry accepts only entries fileSchema accepts, and every well-formed one", () => {
  const h = "a".repeat(64);
  const good: Record<string, unknown>[] = [
    { path: "a", sha256: h, size: 0, executable: false },
    { path: "d/b.bin", sha256: h, size: 5, executable: true, pack: { blob: h, offset: 9 } },
    { path: "l", sha256: h, size: 1, executable: false, link: "a" },
  ];
  for (const e of good) {
    assert.equal(fileSchema.safeParse(e).success, true);
    assert.equal(plainFileEntry(e), true, JSON.stringify(e));
  }
  // Every field replaced by values of other kinds, keys added and removed,
  // in the entry and in its pack: whatever the fast check accepts, zod does.
  const values: unknown[] = [
    undefined,
    null,
    0,
    -1,
    1.5,
    2 ** 53,
    NaN,
    Infinity,
    "",
    "x",
    h,
    h.toUpperCase(),
    h.slice(1),
    true,
    false,
    [],
    {},
    [h],
    { blob: h, offset: 0 },
    { blob: h },
    {
      blob: h,
      offset: -1,
    },
    { blob: h, offset: 0, x: 1 },
    Object.create({ blob: h, offset: 0 }),
  ];
  let accepted = 0;
  let checked = 0;
  for (const base of good) {
    const keys = [...Object.keys(base), "pack", "link", "extra"];
    for (const k of keys) {
      for (const v of values) {
        const e: Record<string, unknown> = { ...base, [k]: v };
        const variants = [e, { ...e, pack: { blob: h, offset: 1 } }];
        if (v === undefined) {
          const without = { ...base };
          delete without[k];
          variants.push(without);
        }
        for (const x of variants) {
          checked++;
          if (plainFileEntry(x)) {
            accepted++;
            assert.equal(fileSchema.safeParse(x).success, true, JSON.stringify(x));
          }
        }
      }
    }
  }
  assert.ok(accepted > 10 && accepted < checked, `${accepted} of ${checked}`);
  for (const x of [null, [], "a", 1, Object.assign(Object.create({ extra: 1 }), good[0])]) {
    assert.equal(plainFileEntry(x), false);
  }
});

Deno.test("parseManifest names the first bad entry as zod finds it, whatever checks it first", () => {
  const h = "b".repeat(64);
  const m = makeManifest(M, 1, [{ path: "a", sha256: h, size: 1, executable: false }], BY);
  const bad = { ...m, files: [...m.files, { path: "b", sha256: h, size: -1, executable: false }] };
  assert.throws(() => parseManifest(bad, M), (err: unknown) => {
    assert.ok(err instanceof CorruptError);
    assert.match(err.message, /files\.1\.size/);
    return true;
  });
});
