import assert from "node:assert/strict";
import { UsageError } from "./errors.ts";
import { formatDuration, parseDuration } from "./duration.ts";

Deno.test("parseDuration reads units, fractions, compounds and bare seconds", () => {
  assert.equal(parseDuration("60s", "--lock-timeout"), 60_000);
  assert.equal(parseDuration("1m", "--lock-timeout"), 60_000);
  assert.equal(parseDuration("500ms", "--lock-timeout"), 500);
  assert.equal(parseDuration("2h", "--lock-timeout"), 7_200_000);
  assert.equal(parseDuration("1.5s", "--lock-timeout"), 1500);
  assert.equal(parseDuration("45", "--lock-timeout"), 45_000);
  assert.equal(parseDuration("0.25", "--lock-timeout"), 250);
  assert.equal(parseDuration("1m30s", "--lock-timeout"), 90_000);
  assert.equal(parseDuration(" 0 ", "--lock-timeout"), 0);
});

Deno.test("parseDuration refuses junk with a one-line UsageError naming the option", () => {
  for (const bad of ["abc", "", "-5s", "5x", "s", "1.2.3s", "5 s", "1m-2s"]) {
    assert.throws(() => parseDuration(bad, "--lock-timeout"), (err: unknown) => {
      assert.ok(err instanceof UsageError, `${bad}: ${err}`);
      assert.equal(err.exitCode, 2);
      assert.ok(!err.message.includes("\n"));
      assert.ok(err.message.startsWith(`Invalid --lock-timeout ${JSON.stringify(bad)}:`));
      return true;
    });
  }
  assert.throws(
    () => parseDuration("abc", "--lock-timeout"),
    { message: `Invalid --lock-timeout "abc": use a duration like 30s, 2m or 500ms.` },
  );
});

Deno.test("formatDuration is short, rounded, and parses back", () => {
  assert.equal(formatDuration(300), "300ms");
  assert.equal(formatDuration(0), "0ms");
  assert.equal(formatDuration(1_000), "1s");
  assert.equal(formatDuration(1_500), "1.5s");
  assert.equal(formatDuration(60_000), "60s");
  assert.equal(formatDuration(120_000), "2m");
  assert.equal(formatDuration(150_000), "2m30s");
  assert.equal(formatDuration(600_000), "10m");
  assert.equal(formatDuration(3 * 3_600_000 + 15 * 60_000), "3h15m");
  assert.equal(formatDuration(42 * 86_400_000 + 7 * 3_600_000), "42d7h");
  for (
    const ms of [
      0,
      1,
      999,
      1000,
      1500,
      60_000,
      120_000,
      150_000,
      3_600_000,
      3 * 3_600_000,
      50 * 3_600_000,
    ]
  ) {
    assert.equal(parseDuration(formatDuration(ms), "x"), ms, String(ms));
  }
});
