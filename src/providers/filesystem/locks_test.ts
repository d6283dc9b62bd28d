import assert from "node:assert/strict";
import { join } from "node:path";
import { LeaseLostError } from "../../errors.ts";
import type {
  AcquireResult,
  LockKey,
  LockRequest,
  ProviderContext,
} from "../../provider/contract.ts";
import { filesystemProvider } from "./mod.ts";
import type { FilesystemProvider } from "./provider.ts";

const HOST = "test-host";
const GLOBAL: LockKey = { kind: "global" };

async function fresh(): Promise<{ dir: string; locks: string; p: FilesystemProvider }> {
  const dir = await Deno.makeTempDir({ prefix: "modelsync-fs-locks-" });
  const ctx: ProviderContext = {
    callTimeoutMs: 30_000,
    host: HOST,
    pid: Deno.pid,
    skewMarginMs: 50,
    baseDir: dir,
  };
  const p = await filesystemProvider.create({ path: "store" }, ctx) as FilesystemProvider;
  await p.init();
  return { dir, locks: join(dir, "store", "locks"), p };
}

function req(holder: string, extra: Partial<LockRequest> = {}): LockRequest {
  return { holder, host: HOST, pid: Deno.pid, operation: "test", ttlMs: 30_000, ...extra };
}

async function deadPid(): Promise<number> {
  const child = new Deno.Command("true", { stdout: "null", stderr: "null" }).spawn();
  await child.status;
  return child.pid;
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

async function age(path: string, ms: number): Promise<void> {
  const t = new Date(Date.now() - ms);
  await Deno.utime(path, t, t);
}

Deno.test("a fresh corrupt record is held by 'unknown', an old one is taken over", async () => {
  const { dir, locks, p } = await fresh();
  try {
    const rec = join(locks, "global.json");
    await Deno.writeTextFile(rec, "{not json");
    const h = p.lock(GLOBAL);
    const info = await h.inspect();
    assert.equal(info?.record.holder, "unknown (corrupt record)");
    assert.equal(info?.stale, false);
    const busy = await h.tryAcquire(req("a"));
    assert.ok(!busy.acquired && busy.current.record.holder === "unknown (corrupt record)");
    const listed = await p.listLocks();
    assert.deepEqual(listed.map((l) => l.record.holder), ["unknown (corrupt record)"]);
    await assert.rejects(h.renew(info!.record.nonce), LeaseLostError);
    await age(rec, 31_000);
    const judged = await h.inspect();
    assert.ok(
      judged?.stale && /corrupt record/.test(judged.staleReason ?? ""),
      judged?.staleReason ?? "not stale",
    );
    const got = await h.tryAcquire(req("a"));
    assert.ok(got.acquired, "an old corrupt record was not taken over");
    assert.equal(got.tookOver?.holder, "unknown (corrupt record)");
    assert.deepEqual(await names(locks), ["global.json", "models"], "claims left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a corrupt record can be force-released by the nonce inspect shows", async () => {
  const { dir, locks, p } = await fresh();
  try {
    await Deno.mkdir(join(locks, "models", "@s", "n"), { recursive: true });
    const rec = join(locks, "models", "@s", "n", "m1.json");
    await Deno.writeTextFile(rec, JSON.stringify({ key: "other/x", nonce: "n" }));
    const h = p.lock({ kind: "model", model: { type: "@s/n", id: "m1" } });
    const info = await h.inspect();
    assert.match(info?.record.nonce ?? "", /^corrupt-[0-9a-f]{32}$/);
    assert.equal((await p.listLocks()).length, 1);
    assert.equal(await h.forceRelease("corrupt-0"), false);
    assert.equal(await h.forceRelease(info!.record.nonce), true);
    assert.equal(await h.inspect(), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a fresh claim blocks a takeover; an abandoned one is moved past", async () => {
  const { dir, locks, p } = await fresh();
  try {
    const h = p.lock(GLOBAL);
    const old = await h.tryAcquire(req("old", { pid: await deadPid() }));
    assert.ok(old.acquired);
    const claim = join(locks, `global.json.cas-${old.record.nonce}-0`);
    await Deno.writeTextFile(claim, "{}");
    const blocked = await h.tryAcquire(req("new"));
    assert.ok(!blocked.acquired, "a takeover ignored a live claim");
    assert.equal(blocked.current.record.nonce, old.record.nonce);
    await age(claim, 31_000); // older than ttl (30 s) + skew
    const got = await h.tryAcquire(req("new"));
    assert.ok(got.acquired, "an abandoned claim blocked the takeover");
    assert.equal(got.tookOver?.nonce, old.record.nonce);
    assert.deepEqual(await names(locks), ["global.json", "models"], "claims were not swept");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a renewal racing a takeover of a dead pid never resurrects the lease", async () => {
  const { dir, locks, p } = await fresh();
  try {
    const pid = await deadPid();
    for (let i = 0; i < 20; i++) {
      const h = p.lock(GLOBAL);
      const old = await h.tryAcquire(req("old", { pid }));
      assert.ok(old.acquired);
      const renewing = h.renew(old.record.nonce).then(() => true, (e: unknown) => {
        assert.ok(e instanceof LeaseLostError, String(e));
        return false;
      });
      const taking: Promise<AcquireResult> = p.lock(GLOBAL).tryAcquire(req("new"));
      const [renewed, take] = await Promise.all([renewing, taking]);
      // A dead pid stays stale after a renewal, so both may succeed in turn;
      // what must never happen is the renewal overwriting the takeover.
      assert.ok(renewed || take.acquired, `round ${i}: nobody won`);
      const cur = await h.inspect();
      if (take.acquired) {
        assert.equal(cur?.record.nonce, take.record.nonce, "a lost lease came back");
        await assert.rejects(h.renew(old.record.nonce), LeaseLostError);
      } else {
        assert.equal(cur?.record.nonce, old.record.nonce);
      }
      assert.equal(await h.forceRelease(cur!.record.nonce), true);
      assert.deepEqual(await names(locks), ["models"], `round ${i}: leftovers`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a renewal racing a takeover of an expired lease: exactly one wins", async () => {
  const { dir, p } = await fresh();
  try {
    const keys: LockKey[] = Array.from({ length: 6 }, (_, i) => ({
      kind: "model",
      model: { type: "vpc", id: `m${i}` },
    }));
    const olds = await Promise.all(
      keys.map((k) => p.lock(k).tryAcquire(req("old", { host: "elsewhere", ttlMs: 200 }))),
    );
    await new Promise((r) => setTimeout(r, 320)); // ttl + skew (50) + slack
    await Promise.all(keys.map(async (k, i) => {
      const old = olds[i];
      assert.ok(old.acquired);
      const renewing = p.lock(k).renew(old.record.nonce).then(() => true, (e: unknown) => {
        assert.ok(e instanceof LeaseLostError, String(e));
        return false;
      });
      const taking: Promise<AcquireResult> = p.lock(k).tryAcquire(req("new"));
      const [renewed, take] = await Promise.all([renewing, taking]);
      assert.ok(renewed !== take.acquired, `${i}: renewed=${renewed} took=${take.acquired}`);
      const cur = await p.lock(k).inspect();
      assert.equal(cur?.record.holder, renewed ? "old" : "new");
    }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("renew bumps seq and keeps the nonce; release sweeps every claim of the nonce", async () => {
  const { dir, locks, p } = await fresh();
  try {
    const model: LockKey = { kind: "model", model: { type: "vpc", id: "m1" } };
    const h = p.lock(model);
    const a = await h.tryAcquire(req("a"));
    assert.ok(a.acquired);
    const path = join(locks, "models", "vpc", "m1.json");
    for (let i = 1; i <= 3; i++) {
      await h.renew(a.record.nonce);
      const stored = JSON.parse(await Deno.readTextFile(path));
      assert.equal(stored.seq, i);
      assert.equal(stored.nonce, a.record.nonce);
    }
    assert.deepEqual(await names(join(locks, "models", "vpc")), ["m1.json"]);
    // A leftover claim of an old version of this nonce (a crashed renewer).
    await Deno.writeTextFile(`${path}.cas-${a.record.nonce}-1`, "{}");
    await h.release(a.record.nonce);
    assert.deepEqual(await names(join(locks, "models", "vpc")), []);
    assert.deepEqual(await p.listLocks(), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("listLocks skips claim files, temp files and invalid names", async () => {
  const { dir, locks, p } = await fresh();
  try {
    const a = await p.lock({ kind: "model", model: { type: "vpc", id: "m1" } }).tryAcquire(
      req("a"),
    );
    assert.ok(a.acquired);
    const vpc = join(locks, "models", "vpc");
    await Deno.writeTextFile(join(vpc, `m1.json.cas-${a.record.nonce}-0`), "{}");
    await Deno.writeTextFile(join(vpc, "-bad.json"), "{}");
    await Deno.writeTextFile(join(vpc, "notes.txt"), "");
    await Deno.mkdir(join(locks, "models", "Bad Type"));
    const listed = await p.listLocks();
    assert.deepEqual(listed.map((l) => l.record.key), ["vpc/m1"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("separate processes: one commit and one takeover win", async () => {
  const { dir, p } = await fresh();
  try {
    const old = await p.lock(GLOBAL).tryAcquire(req("old", { pid: await deadPid() }));
    assert.ok(old.acquired);
    const mod = new URL("./mod.ts", import.meta.url).href;
    const script = join(dir, "racer.ts");
    await Deno.writeTextFile(
      script,
      `import { filesystemProvider } from ${JSON.stringify(mod)};
import { makeManifest } from ${
        JSON.stringify(new URL("../../model/manifest.ts", import.meta.url).href)
      };
const p = await filesystemProvider.create({ path: "store" }, {
  callTimeoutMs: 30000, host: ${JSON.stringify(HOST)}, pid: Deno.pid, skewMarginMs: 50,
  baseDir: ${JSON.stringify(dir)},
});
const m = { type: "vpc", id: "m1" };
const by = { holder: "r" + Deno.pid, host: "h", pid: Deno.pid };
const start = Number(Deno.args[0]);
while (Date.now() < start) await new Promise((r) => setTimeout(r, 1));
const [c, l] = await Promise.allSettled([
  p.commitManifest(m, 0, makeManifest(m, 1, [], by)),
  // Another host: a racer that already exited must not make the winner's record stale.
  p.lock({ kind: "global" }).tryAcquire({
    holder: "r", host: "racer-host", pid: Deno.pid, operation: "race", ttlMs: 30000,
  }),
]);
console.log(JSON.stringify({
  committed: c.status === "fulfilled",
  commitError: c.status === "rejected" ? c.reason.name : null,
  acquired: l.status === "fulfilled" && l.value.acquired,
}));
`,
    );
    const config = new URL("../../../deno.json", import.meta.url).pathname;
    const start = String(Date.now() + 2000);
    const outs = await Promise.all(
      Array.from({ length: 5 }, () =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "--config", config, script, start],
          stdout: "piped",
          stderr: "piped",
        }).output()),
    );
    const results = outs.map((o) => {
      assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
      return JSON.parse(new TextDecoder().decode(o.stdout));
    });
    assert.equal(results.filter((r) => r.committed).length, 1, JSON.stringify(results));
    assert.ok(results.every((r) => r.committed || r.commitError === "ConflictError"));
    assert.equal(results.filter((r) => r.acquired).length, 1, JSON.stringify(results));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
