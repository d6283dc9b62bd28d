import assert from "node:assert/strict";
import type { ScanResult } from "./scan.ts";
import { hasPackedChanges, packedBuffers, packScan, unpackScan } from "./packed_scan.ts";

const sha = (c: string) => c.repeat(64);

function scanOf(files: [string, number, boolean, string][], changes: ScanResult["changes"]) {
  const scan: ScanResult = {
    model: { type: "@acme/net", id: "m1" },
    dir: "/repo/models/@acme/net/m1",
    exists: true,
    files: new Map(),
    changes,
    skipped: ["sock (not a regular file)"],
    unsyncable: [{ path: "bad\uFFFD", problem: "its name is not valid UTF-8 (shown with U+FFFD)" }],
    hashed: 2,
    startedAtMs: 1_700_000_000_123.5,
  };
  for (const [path, size, executable, sha256] of files) {
    scan.files.set(path, { path, size, mtimeMs: 1_600_000_000_000.25 + size, executable, sha256 });
  }
  return scan;
}

Deno.test("packScan/unpackScan round-trip every field, odd names and links included", () => {
  const scan = scanOf([
    ["a.txt", 3, false, sha("a")],
    ["dir/new\nline", 0, true, sha("0")],
    ["dir/ünï cödé", 5_000_000_000, false, sha("f")],
    ["z", 1, true, "0123456789abcdef".repeat(4)],
  ], { added: ["dir/new\nline", "z"], modified: ["a.txt"], deleted: ["gone/x"] });
  scan.files.set("latest", {
    path: "latest",
    size: 2,
    mtimeMs: 1,
    executable: false,
    sha256: sha("b"),
    link: "v2",
  });
  const packed = packScan(scan);
  assert.equal(packed.packed, true);
  assert.deepEqual(unpackScan(packed), scan);
  assert.equal(hasPackedChanges(packed), true);
  assert.equal(packedBuffers(packed).length, 6);
});

Deno.test("packScan/unpackScan: an empty or missing model, and a plain scan passes through", () => {
  const empty = scanOf([], { added: [], modified: [], deleted: [] });
  empty.exists = false;
  assert.deepEqual(unpackScan(packScan(empty)), empty);
  assert.equal(hasPackedChanges(packScan(empty)), false);
  assert.equal(hasPackedChanges(empty), false);
  assert.equal(unpackScan(empty), empty);
  const deletedOnly = scanOf([], { added: [], modified: [], deleted: ["x"] });
  assert.equal(hasPackedChanges(packScan(deletedOnly)), true);
});

Deno.test("packScan refuses a hash that is not 64 lowercase hex digits", () => {
  const bad = scanOf([["a", 1, false, sha("A")]], { added: ["a"], modified: [], deleted: [] });
  assert.throws(() => packScan(bad), /Not a SHA-256/);
});
