import assert from "node:assert/strict";
import { formatLockStatus } from "./lock_admin.ts";

const base = {
  acquiredAt: "2026-01-01T00:00:00.000Z",
  renewedAt: "2026-01-01T00:00:00.000Z",
  ttlMs: 30_000,
  nonce: "n",
};

Deno.test("lock status prints records from the datastore one per line, control characters escaped", () => {
  const lines = formatLockStatus({
    schema: "modelsync.locks/1",
    locks: [{
      ...base,
      key: "vpc/m1",
      holder: "evil\nSECOND LINE \u001b[31mred",
      host: "h\rost",
      pid: 7,
      operation: "push\u0007",
      ageMs: 3 * 86_400_000,
      ttlLeftMs: -3 * 86_400_000,
      state: "stale",
      staleReason: "expired\n3d ago",
      repo: "/work/\u001b]0;x",
    }],
  });
  assert.equal(lines.length, 2);
  for (const line of lines) {
    assert.ok(
      ![...line].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f),
      JSON.stringify(line),
    );
  }
  assert.match(lines[1], /evil\\nSECOND LINE \\x1b\[31mred@h\\rost +7 +push\\x07 +3d +/);
  assert.match(lines[1], /stale: expired\\n3d ago +\/work\/\\x1b\]0;x$/);
});

Deno.test("lock status aligns its columns; a live lock shows its ttl, a record without repo an empty column", () => {
  const lines = formatLockStatus({
    schema: "modelsync.locks/1",
    locks: [
      {
        ...base,
        key: "global",
        holder: "ci",
        host: "build-3",
        pid: 4971,
        operation: "flush",
        ageMs: 3_000,
        ttlLeftMs: 27_000,
        state: "live",
      },
      {
        ...base,
        key: "@acme/nlp/bert",
        holder: "unknown (corrupt record)",
        host: "(unknown)",
        pid: 0,
        operation: "unknown",
        nonce: "corrupt-ab",
        ageMs: 1_000,
        ttlLeftMs: 59_000,
        state: "corrupt",
      },
    ],
  });
  assert.equal(lines[0].indexOf("STATE"), lines[1].indexOf("live"));
  assert.equal(lines[0].indexOf("STATE"), lines[2].indexOf("corrupt"));
  assert.match(lines[1], /ci@build-3 +4971 +flush +3s +ttl 27s left$/);
  assert.match(lines[2], /corrupt +corrupt record +- +- +1s +corrupt record; not stale yet$/);
});
