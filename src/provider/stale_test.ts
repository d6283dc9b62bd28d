import assert from "node:assert/strict";
import type { LockRecord } from "../lock/records.ts";
import {
  describeHolder,
  lockRecordProblem,
  MAX_LOCK_TTL_MS,
  printable,
  PRINTABLE_MAX,
  SKEW_MARGIN_MS,
} from "./stale.ts";

function record(fields: Partial<LockRecord> = {}): LockRecord {
  return {
    key: "global",
    holder: "ci",
    host: "build-01",
    pid: 42,
    operation: "push",
    acquiredAt: "2024-05-01T12:00:01.000Z",
    renewedAt: "2024-05-01T12:00:01.000Z",
    ttlMs: 30_000,
    nonce: "n",
    ...fields,
  };
}

/** Code points a terminal would act on: C0, DEL, C1. */
function controls(text: string): number[] {
  return [...text].map((c) => c.codePointAt(0)!).filter((c) =>
    c < 0x20 || (c >= 0x7f && c <= 0x9f)
  );
}

Deno.test("describeHolder: normal text is unchanged", () => {
  assert.equal(
    describeHolder(record()),
    "ci@build-01 pid 42 (push, since 2024-05-01T12:00:01.000Z)",
  );
  const unicode = record({ holder: 'Zoë "ops" DOMAIN\\user', host: "hôte-東京" });
  assert.equal(
    describeHolder(unicode),
    'Zoë "ops" DOMAIN\\user@hôte-東京 pid 42 (push, since 2024-05-01T12:00:01.000Z)',
  );
});

Deno.test("describeHolder: control characters in a record are escaped, one line", () => {
  const evil = record({
    holder: "evil\nSECOND LINE \u001b[31mred",
    host: "h\r\u0007\u0000\u007f\u009b2J",
    operation: "push\u2028next\u202egnp.exe\ttab",
    acquiredAt: "2024\u001b]0;title\u0007",
  });
  const text = describeHolder(evil);
  assert.deepEqual(controls(text), [], JSON.stringify(text));
  assert.ok(!text.includes("\u2028") && !text.includes("\u202e"), JSON.stringify(text));
  assert.equal(
    text,
    "evil\\nSECOND LINE \\x1b[31mred@h\\r\\x07\\x00\\x7f\\x9b2J pid 42 " +
      "(push\\u2028next\\u202egnp.exe\\ttab, since 2024\\x1b]0;title\\x07)",
  );
});

Deno.test("describeHolder: absurdly long fields are cut with an ellipsis", () => {
  const text = describeHolder(record({ holder: "x".repeat(100_000), operation: "\n".repeat(500) }));
  assert.ok(text.length < 3 * PRINTABLE_MAX, `${text.length} chars`);
  assert.ok(text.startsWith(`${"x".repeat(PRINTABLE_MAX - 1)}…@build-01`), text);
  assert.deepEqual(controls(text), []);
});

Deno.test("printable: escapes, limits and surrogates", () => {
  assert.equal(printable("plain text, 100% ok: a\\b"), "plain text, 100% ok: a\\b");
  assert.equal(printable("a\tb\u0085c\u0008"), "a\\tb\\x85c\\b");
  assert.equal(printable("x".repeat(PRINTABLE_MAX)), "x".repeat(PRINTABLE_MAX));
  assert.equal(printable("x".repeat(PRINTABLE_MAX + 1)), `${"x".repeat(PRINTABLE_MAX - 1)}…`);
  assert.equal(printable("abcdef", 4), "abc…");
  // An escape is never cut in half, nor a surrogate pair.
  assert.equal(printable("ab\u001bcd", 5), "ab…");
  assert.equal(printable("a😀😀", 4), "a😀…");
  assert.equal(printable("lone \ud800 surrogate"), "lone \\ud800 surrogate");
  assert.equal(printable("y".repeat(1000), Infinity), "y".repeat(1000));
});

Deno.test("lockRecordProblem: a ttl over 24 h or a renewal beyond the skew margin ahead is corrupt", () => {
  const now = Date.parse("2024-05-01T12:00:01.000Z");
  const at = (ms: number) => new Date(now + ms).toISOString();
  assert.equal(lockRecordProblem(record(), { nowMs: now }), undefined);
  assert.equal(lockRecordProblem(record({ ttlMs: MAX_LOCK_TTL_MS }), { nowMs: now }), undefined);
  assert.equal(
    lockRecordProblem(record({ ttlMs: 25 * 3_600_000 }), { nowMs: now }),
    "it claims a ttl of 25h, over the 24h any modelsync takes",
  );
  assert.notEqual(
    lockRecordProblem(record({ ttlMs: MAX_LOCK_TTL_MS + 1 }), { nowMs: now }),
    undefined,
  );
  assert.equal(
    lockRecordProblem(record({ renewedAt: at(SKEW_MARGIN_MS) }), { nowMs: now }),
    undefined,
    "a clock a little ahead is tolerated",
  );
  assert.equal(
    lockRecordProblem(record({ renewedAt: at(60_000) }), { nowMs: now }),
    `its renewal time ${at(60_000)} is 60s in the future`,
  );
  // Where expiry is judged by another time (S3 Last-Modified), that time counts.
  assert.equal(
    lockRecordProblem(record({ renewedAt: at(60_000) }), { nowMs: now, renewedAtMs: now }),
    undefined,
  );
  assert.equal(
    lockRecordProblem(record({ renewedAt: "garbage" }), { nowMs: now }),
    undefined,
    "an unreadable time is judgeLock's business (stale), not this rule's",
  );
});
