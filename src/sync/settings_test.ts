import assert from "node:assert/strict";
import { UsageError } from "../errors.ts";
import { resolveSettings as resolveBoth } from "./settings.ts";
import type { RepoConfig } from "../repo/config.ts";

const config = {
  datastore: { type: "filesystem", path: "/x" },
  dataDir: "models",
  exclude: [],
  lockTimeout: "10s",
  jobs: 3,
  holder: "from-file",
} as RepoConfig;

const resolveSettings = (src: Parameters<typeof resolveBoth>[0]) => resolveBoth(src).settings;

Deno.test("settings: flag beats env beats modelsync.yaml beats default", () => {
  assert.equal(resolveSettings({ flags: {}, env: {} }).lockTimeoutMs, 60_000);
  assert.equal(resolveSettings({ flags: {}, env: {}, config }).lockTimeoutMs, 10_000);
  assert.equal(
    resolveSettings({ flags: {}, env: { MODELSYNC_LOCK_TIMEOUT: "5s" }, config }).lockTimeoutMs,
    5_000,
  );
  assert.equal(
    resolveSettings({ flags: { lockTimeout: "2s" }, env: { MODELSYNC_LOCK_TIMEOUT: "5s" }, config })
      .lockTimeoutMs,
    2_000,
  );
  assert.equal(resolveSettings({ flags: {}, env: {}, config }).jobs, 3);
  assert.equal(
    resolveSettings({ flags: { jobs: "7" }, env: { MODELSYNC_JOBS: "5" }, config }).jobs,
    7,
  );
  assert.equal(
    resolveSettings({ flags: {}, env: { MODELSYNC_HOLDER: "env" }, config }).holder,
    "env",
  );
  assert.equal(resolveSettings({ flags: {}, env: {}, config }).holder, "from-file");
});

Deno.test("settings: --disable-cap from env is comma separated and checked", () => {
  const s = resolveSettings({ flags: {}, env: { MODELSYNC_DISABLE_CAP: "scopedSync,serverTime" } });
  assert.deepEqual(s.disableCaps, ["scopedSync", "serverTime"]);
  assert.throws(() => resolveSettings({ flags: { disableCap: ["nope"] }, env: {} }), UsageError);
});

Deno.test("settings: bad values are usage errors", () => {
  assert.throws(() => resolveSettings({ flags: { jobs: "0" }, env: {} }), UsageError);
  assert.throws(() => resolveSettings({ flags: { lockTimeout: "abc" }, env: {} }), UsageError);
  assert.throws(() => resolveSettings({ flags: {}, env: { MODELSYNC_JSON: "maybe" } }), UsageError);
});

Deno.test("settings: the origin of each setting names the flag, variable or file key", () => {
  const { origins } = resolveBoth({
    flags: { jobs: "2" },
    env: { MODELSYNC_LOCK_TTL: "5s" },
    config,
  });
  assert.deepEqual(origins.jobs, { source: "flag", name: "--jobs" });
  assert.deepEqual(origins.lockTtlMs, { source: "env", name: "MODELSYNC_LOCK_TTL" });
  assert.deepEqual(origins.lockTimeoutMs, { source: "file", name: "lockTimeout" });
  assert.deepEqual(origins.callTimeoutMs, { source: "default", name: "default" });
});

Deno.test("settings: --timeout 0s is refused; NO_COLOR and --no-color turn colour off", () => {
  assert.throws(() => resolveSettings({ flags: { timeout: "0s" }, env: {} }), /longer than 0s/);
  assert.equal(resolveSettings({ flags: {}, env: { NO_COLOR: "1" } }).color, false);
  assert.equal(resolveSettings({ flags: { color: false }, env: {} }).color, false);
  assert.equal(resolveSettings({ flags: { color: true }, env: {} }).color, true);
});
