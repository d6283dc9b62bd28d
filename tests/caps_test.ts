/**
 * End-to-end `caps`: the filesystem datastore's capabilities, the lock path
 * the manager takes, `--disable-cap`, and `--probe`.
 */
import assert from "node:assert/strict";
import {
  Datastore,
  describe,
  expectCode,
  expectJson,
  expectOneLineError,
  Sandbox,
} from "./_helpers.ts";

Deno.test("caps: the filesystem datastore is scoped; --disable-cap scopedSync takes the global path", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("a");

  const res = expectCode(await repo.run(["caps", "--json"]), 0, "caps --json");
  const doc = expectJson(res, "modelsync.caps/1");
  assert.equal(doc.provider, "filesystem", describe(res));
  assert.match(String(doc.location), new RegExp(sb.datastore.dir.replaceAll("/", "\\/")));
  const caps = doc.capabilities as Record<string, unknown>;
  assert.equal(caps.scopedSync, true, describe(res));
  assert.equal(caps.atomicCommit, true, describe(res));
  assert.equal(typeof caps.serverTime, "boolean");
  assert.ok(Number.isInteger(caps.maxConcurrency) && (caps.maxConcurrency as number) >= 1);
  assert.equal(doc.lockPath, "scoped");
  assert.deepEqual(doc.disabled, []);
  assert.ok(Array.isArray(doc.warnings));
  const lock = doc.lock as Record<string, number>;
  assert.equal(lock.ttlMs, 30_000);
  assert.equal(lock.lockTimeoutMs, 60_000);
  assert.equal(typeof lock.renewEveryMs, "number");
  assert.equal(typeof lock.skewMarginMs, "number");
  assert.equal(doc.probe, undefined, "no probe without --probe");

  const off = expectCode(
    await repo.run(["caps", "--json", "--disable-cap", "scopedSync"]),
    0,
    "caps --disable-cap scopedSync",
  );
  const offDoc = expectJson(off, "modelsync.caps/1");
  assert.equal(offDoc.lockPath, "global", describe(off));
  assert.deepEqual(offDoc.disabled, ["scopedSync"]);
  assert.equal((offDoc.capabilities as Record<string, unknown>).scopedSync, false);

  // The environment variable does the same, and flags beat the environment.
  const env = await repo.run(["caps", "--json"], {
    env: { MODELSYNC_DISABLE_CAP: "scopedSync", MODELSYNC_LOCK_TIMEOUT: "7s" },
  });
  const envDoc = expectJson(expectCode(env, 0, "caps with env"), "modelsync.caps/1");
  assert.equal(envDoc.lockPath, "global", describe(env));
  assert.equal((envDoc.lock as Record<string, number>).lockTimeoutMs, 7_000);
  const flag = await repo.run(["caps", "--json", "--lock-timeout", "5s"], {
    env: { MODELSYNC_LOCK_TIMEOUT: "7s" },
  });
  const flagDoc = expectJson(expectCode(flag, 0, "caps with flag and env"), "modelsync.caps/1");
  assert.equal((flagDoc.lock as Record<string, number>).lockTimeoutMs, 5_000, describe(flag));

  const text = expectCode(await repo.run(["caps"]), 0, "caps (text)");
  assert.match(text.stdout, /scopedSync/, describe(text));
  assert.match(text.stdout, /scoped/, describe(text));
  assert.doesNotMatch(text.stdout, /^\s*[{[]/, "text output is not JSON");
});

Deno.test("caps --probe: every check holds on the filesystem datastore", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("a");
  const res = expectCode(await repo.run(["caps", "--probe", "--json"]), 0, "caps --probe");
  const doc = expectJson(res, "modelsync.caps/1");
  const probe = doc.probe as { name: string; ok: boolean; detail: string }[];
  assert.ok(Array.isArray(probe) && probe.length > 0, describe(res));
  for (const check of probe) {
    assert.equal(typeof check.name, "string");
    assert.equal(typeof check.detail, "string");
    assert.equal(check.ok, true, `probe check ${check.name}: ${check.detail}`);
  }
  // The probe leaves no locks behind.
  const locks = expectJson(
    expectCode(await repo.run(["lock", "status", "--json"]), 0),
    "modelsync.locks/1",
  );
  assert.deepEqual(locks.locks, []);
});

Deno.test("caps --disable-cap nonsense is a usage error", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("a");
  const res = await repo.run(["caps", "--disable-cap", "nonsense"]);
  const line = expectOneLineError(res, 2, "--disable-cap nonsense");
  assert.match(line, /nonsense/);
  const env = await repo.run(["caps"], { env: { MODELSYNC_DISABLE_CAP: "nonsense" } });
  expectOneLineError(env, 2, "MODELSYNC_DISABLE_CAP=nonsense");
});

Deno.test("settings: flag beats environment beats modelsync.yaml beats default", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("a");
  const other = await sb.repo("b");
  // A second datastore, made by init in another directory.
  const ds2 = `${sb.root}/datastore2`;
  const ds3 = `${sb.root}/datastore3`;
  for (const [name, ds] of [["c", ds2], ["d", ds3]]) {
    const dir = await sb.dir(name);
    expectCode(await sb.run(["init", "--datastore", `filesystem:${ds}`], { cwd: dir }), 0);
  }
  const config = await repo.read("modelsync.yaml");
  await repo.write("modelsync.yaml", `${config}\nlockTimeout: 9s\ndisableCaps: [scopedSync]\n`);

  const caps = async (args: string[], env: Record<string, string> = {}) => {
    const res = await repo.run(["caps", "--json", ...args], { env });
    return expectJson(expectCode(res, 0, `caps ${args.join(" ")}`), "modelsync.caps/1");
  };
  const timeout = (d: Record<string, unknown>) => (d.lock as Record<string, number>).lockTimeoutMs;
  const fromFile = await caps([]);
  assert.equal(timeout(fromFile), 9_000, "modelsync.yaml beats the default");
  assert.equal(fromFile.lockPath, "global", "disableCaps from modelsync.yaml");
  assert.match(String(fromFile.location), /datastore$/);
  const fromEnv = await caps([], { MODELSYNC_LOCK_TIMEOUT: "7s", MODELSYNC_DATASTORE: ds2 });
  assert.equal(timeout(fromEnv), 7_000, "the environment beats modelsync.yaml");
  assert.ok(String(fromEnv.location).includes("datastore2"), JSON.stringify(fromEnv));
  const fromFlag = await caps(["--lock-timeout", "5s", "--datastore", `filesystem:${ds3}`], {
    MODELSYNC_LOCK_TIMEOUT: "7s",
    MODELSYNC_DATASTORE: ds2,
  });
  assert.equal(timeout(fromFlag), 5_000, "the flag beats the environment");
  assert.ok(String(fromFlag.location).includes("datastore3"), JSON.stringify(fromFlag));

  // A push honours the environment's datastore too.
  await repo.write("models/vpc/m1/f.txt", "f\n");
  expectCode(await repo.run(["push"], { env: { MODELSYNC_DATASTORE: ds2 } }), 0);
  assert.equal((await new Datastore(ds2).current("vpc/m1"))?.generation, 1);
  assert.equal(await sb.datastore.current("vpc/m1"), null);
  // The untouched repo still uses its own file's datastore and the default timeout.
  const plain = expectJson(
    expectCode(await other.run(["caps", "--json"]), 0),
    "modelsync.caps/1",
  );
  assert.equal(timeout(plain), 60_000);
  assert.equal(plain.lockPath, "scoped");
});
