import assert from "node:assert/strict";
import { formatLockStatus } from "./lock_admin.ts";

Deno.test("lock status prints records from the datastore on one line, control characters escaped", () => {
  const [line] = formatLockStatus({
    schema: "modelsync.locks/1",
    locks: [{
      key: "vpc/m1",
      holder: "evil\nSECOND LINE \u001b[31mred",
      host: "h\rost",
      pid: 7,
      operation: "push\u0007",
      acquiredAt: "2026-01-01T00:00:00.000Z",
      renewedAt: "2026-01-01T00:00:00.000Z",
      ttlMs: 30_000,
      nonce: "n",
      ageMs: 3 * 86_400_000,
      ttlLeftMs: -3 * 86_400_000,
      state: "stale",
      staleReason: "expired\n3d ago",
    }],
  });
  assert.ok(
    ![...line].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f),
    JSON.stringify(line),
  );
  assert.match(line, /evil\\nSECOND LINE \\x1b\[31mred@h\\rost pid 7/);
  assert.match(line, /age 3d {2}ttl expired 3d ago/);
});
