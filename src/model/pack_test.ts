import assert from "node:assert/strict";
import { CorruptError } from "../errors.ts";
import { hashBytes } from "./hash.ts";
import {
  PACK_TARGET_BYTES,
  PackBuilder,
  packSpans,
  readPackIndex,
  SPAN_GAP_BYTES,
} from "./pack.ts";

const enc = new TextEncoder();

Deno.test("PackBuilder: chunks back to back, an index and footer that readPackIndex reads, named by its hash", () => {
  const b = new PackBuilder();
  const parts = ["alpha", "", "gamma gamma", "alpha"].map((t) => enc.encode(t));
  const offsets = parts.map((p) => b.add(hashBytes(p), p));
  assert.deepEqual(offsets, [0, 5, 5, 0], "the same content is stored once");
  assert.equal(b.count, 3);
  const pack = b.finish();
  assert.equal(pack.sha256, hashBytes(pack.bytes));
  const index = readPackIndex(pack.bytes, pack.sha256);
  assert.deepEqual(index.map((c) => [c.offset, c.length]), [[0, 5], [5, 0], [5, 11]]);
  for (const c of index) {
    assert.equal(hashBytes(pack.bytes.subarray(c.offset, c.offset + c.length)), c.sha256);
  }
});

Deno.test("readPackIndex: a truncated, garbled or lying pack is corrupt (exit 6), naming the pack", () => {
  const b = new PackBuilder();
  b.add(hashBytes(enc.encode("x")), enc.encode("x"));
  const { bytes } = b.finish();
  const cases: [string, Uint8Array][] = [
    ["too short", bytes.subarray(0, 8)],
    ["no footer", bytes.subarray(0, bytes.length - 1)],
    ["garbled index", bytes.map((v, i) => (i === 2 ? 0x7b : v))],
  ];
  // An index naming a chunk beyond the chunk area.
  const lie = new PackBuilder();
  lie.add("a".repeat(64), enc.encode("yy"));
  const good = lie.finish().bytes;
  const text = new TextDecoder().decode(good);
  const forged = enc.encode(text.replace(`,0,2]`, `,0,9]`));
  cases.push(["chunk outside", forged]);
  for (const [what, b2] of cases) {
    assert.throws(() => readPackIndex(b2, "f".repeat(64)), (err: Error) => {
      assert.ok(err instanceof CorruptError, what);
      assert.match(err.message, /Pack f{64} in the datastore is corrupt/, what);
      return true;
    });
  }
});

Deno.test("packSpans: parts of a pack merge across small gaps, split across large ones and at 16 MiB", () => {
  const parts = [
    { id: "a", blob: "p1", offset: 0, length: 10 },
    { id: "c", blob: "p1", offset: 21 + 2 * SPAN_GAP_BYTES, length: 5 },
    { id: "b", blob: "p1", offset: 10 + SPAN_GAP_BYTES, length: 10 },
    { id: "d", blob: "p2", offset: 100, length: 1 },
    { id: "b2", blob: "p1", offset: 10 + SPAN_GAP_BYTES, length: 10 }, // the same part twice
  ];
  const spans = packSpans(parts, (p) => p);
  assert.deepEqual(
    spans.map((s) => [s.blob, s.offset, s.length, s.items.map((p) => p.id).join("")]),
    [
      ["p1", 0, 20 + SPAN_GAP_BYTES, "abb2"],
      ["p1", 21 + 2 * SPAN_GAP_BYTES, 5, "c"],
      ["p2", 100, 1, "d"],
    ],
  );
  const big = [0, 1, 2].map((i) => ({
    blob: "p",
    offset: i * 8 * 1024 * 1024,
    length: 8 * 1024 * 1024,
  }));
  const cut = packSpans(big, (p) => p);
  assert.deepEqual(cut.map((s) => s.items.length), [2, 1]);
  assert.ok(cut.every((s) => s.length <= PACK_TARGET_BYTES));
});
