import assert from "node:assert/strict";
import { hostname } from "node:os";
import { join } from "node:path";
import { InterruptedError, LeaseLostError, LockTimeoutError } from "../errors.ts";
import { acquireRepoLock, inspectRepoLock, repoLockPath } from "./repo_lock.ts";
import { withTempDir } from "../_with_temp_dir.ts";

const CONFIG = decodeURIComponent(new URL("../../deno.json", import.meta.url).pathname);

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return child.pid;
}

async function plant(repo: string, record: Record<string, unknown> | string): Promise<void> {
  await Deno.mkdir(join(repo, ".modelsync"), { recursive: true });
  const text = typeof record === "string" ? record : JSON.stringify(record);
  await Deno.writeTextFile(repoLockPath(repo), text);
}

const record = (pid: number, host = hostname(), renewedAt = new Date().toISOString()) => ({
  pid,
  host,
  operation: "push",
  startedAt: "2024-01-01T00:00:00.000Z",
  renewedAt,
  ttlMs: 30_000,
  nonce: "abc",
});

Deno.test("the repo lock is exclusive; the second acquirer waits, then gets it", async () => {
  await withTempDir(async (repo) => {
    const first = await acquireRepoLock(repo, { operation: "push", timeoutMs: 1000 });
    assert.equal((await inspectRepoLock(repo))?.operation, "push");
    await assert.rejects(
      acquireRepoLock(repo, { operation: "pull", timeoutMs: 150 }),
      (err: unknown) => {
        assert.ok(err instanceof LockTimeoutError);
        assert.equal(err.exitCode, 75);
        assert.ok(!err.message.includes("\n"));
        assert.match(
          err.message,
          new RegExp(
            `^Another modelsync process \\(pid ${Deno.pid} on this host, push since .*, renewed ` +
              `.* ago\\) is working in ${repo}; wait for it or raise --lock-timeout, or if it is ` +
              `gone, delete ${repo}/\\.modelsync/repo\\.lock\\.$`,
          ),
        );
        return true;
      },
    );
    const waiting = acquireRepoLock(repo, { operation: "pull", timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 100));
    await first.release();
    await first.release(); // idempotent
    const second = await waiting;
    assert.equal((await inspectRepoLock(repo))?.operation, "pull");
    await second.release();
    assert.equal(await inspectRepoLock(repo), null);
    const left = (await Array.fromAsync(Deno.readDir(join(repo, ".modelsync"))))
      .map((e) => e.name).filter((n) => n !== "repo.lock.guard");
    assert.deepEqual(left, [], "no temporary lock files left");
  });
});

Deno.test("a lock left by a dead pid on this host is taken over", async () => {
  await withTempDir(async (repo) => {
    await plant(repo, record(await deadPid()));
    const lock = await acquireRepoLock(repo, { operation: "flush", timeoutMs: 0 });
    assert.equal((await inspectRepoLock(repo))?.pid, Deno.pid);
    await lock.release();
  });
});

Deno.test("a lock left by an earlier process with our own pid is taken over", async () => {
  await withTempDir(async (repo) => {
    await plant(repo, record(Deno.pid));
    const lock = await acquireRepoLock(repo, { operation: "flush", timeoutMs: 0 });
    await lock.release();
  });
});

Deno.test("a holder on another host is waited for while it renews, taken over after its lease", async () => {
  await withTempDir(async (repo) => {
    await plant(repo, record(Deno.pid, "some-other-host"));
    await assert.rejects(
      acquireRepoLock(repo, { operation: "push", timeoutMs: 50 }),
      /\(pid \d+ on another host \(some-other-host\), push since /,
    );
    // Its pid means nothing here; its lease ran out 40 s ago (30 s ttl + 5 s margin).
    await plant(
      repo,
      record(Deno.pid, "some-other-host", new Date(Date.now() - 70_000).toISOString()),
    );
    const lock = await acquireRepoLock(repo, { operation: "push", timeoutMs: 0 });
    assert.equal((await inspectRepoLock(repo))?.host, hostname());
    await lock.release();
  });
});

Deno.test("a record claiming an impossible lease is corrupt: taken over once unchanged 60 s", async () => {
  await withTempDir(async (repo) => {
    const years = 10 * 365 * 86_400_000;
    for (
      const planted of [
        { ...record(Deno.pid, "other"), ttlMs: years },
        record(Deno.pid, "other", new Date(Date.now() + years).toISOString()),
      ]
    ) {
      await plant(repo, planted);
      await assert.rejects(
        acquireRepoLock(repo, { operation: "push", timeoutMs: 50 }),
        (err: unknown) => err instanceof LockTimeoutError && /is corrupt \(it/.test(err.message),
      );
      const old = (Date.now() - 120_000) / 1000;
      await Deno.utime(repoLockPath(repo), old, old);
      const lock = await acquireRepoLock(repo, { operation: "push", timeoutMs: 0 });
      assert.equal((await inspectRepoLock(repo))?.pid, Deno.pid);
      await lock.release();
    }
  });
});

Deno.test("the holder renews its record; losing it aborts the lock's signal", async () => {
  await withTempDir(async (repo) => {
    const lock = await acquireRepoLock(repo, { operation: "push", timeoutMs: 0, ttlMs: 150 });
    const first = await inspectRepoLock(repo);
    assert.equal(first?.ttlMs, 150);
    let renewed: Awaited<ReturnType<typeof inspectRepoLock>> = first;
    for (let i = 0; i < 100 && renewed?.renewedAt === first?.renewedAt; i++) {
      await new Promise((r) => setTimeout(r, 20));
      renewed = await inspectRepoLock(repo);
    }
    assert.equal(renewed?.nonce, first?.nonce);
    assert.ok(Date.parse(renewed!.renewedAt) > Date.parse(first!.renewedAt), "renewed");
    lock.assertHeld();
    // Another process takes it over (as after a long pause): the next renewal notices.
    await plant(repo, { ...record(Deno.pid, "other"), nonce: "theirs" });
    const reason = await new Promise<unknown>((resolve) =>
      lock.signal.addEventListener("abort", () => resolve(lock.signal.reason), { once: true })
    );
    assert.ok(reason instanceof LeaseLostError, String(reason));
    assert.match(reason.message, /taken over by pid \d+ on another host \(other\)/);
    assert.throws(() => lock.assertHeld(), LeaseLostError);
    await lock.release();
    assert.equal((await inspectRepoLock(repo))?.nonce, "theirs", "release left their lock");
  });
});

Deno.test("a corrupt lock is waited on while fresh and taken over after 60 s", async () => {
  await withTempDir(async (repo) => {
    await plant(repo, "{garbage");
    await assert.rejects(
      acquireRepoLock(repo, { operation: "push", timeoutMs: 50 }),
      (err: unknown) =>
        err instanceof LockTimeoutError && /is corrupt \(it is not valid JSON/.test(err.message),
    );
    const old = (Date.now() - 120_000) / 1000;
    await Deno.utime(repoLockPath(repo), old, old);
    const lock = await acquireRepoLock(repo, { operation: "push", timeoutMs: 0 });
    assert.equal((await inspectRepoLock(repo))?.pid, Deno.pid);
    await lock.release();
  });
});

Deno.test("racing takeovers of one stale lock: exactly one wins at a time", async () => {
  await withTempDir(async (repo) => {
    await plant(repo, record(await deadPid()));
    let holders = 0;
    let maxHolders = 0;
    await Promise.all(Array.from({ length: 6 }, async (_, i) => {
      const lock = await acquireRepoLock(repo, { operation: `op${i}`, timeoutMs: 10_000 });
      holders++;
      maxHolders = Math.max(maxHolders, holders);
      await new Promise((r) => setTimeout(r, 20));
      holders--;
      await lock.release();
    }));
    assert.equal(maxHolders, 1);
    assert.equal(await inspectRepoLock(repo), null);
  });
});

Deno.test("waiting for the repo lock stops on abort", async () => {
  await withTempDir(async (repo) => {
    const held = await acquireRepoLock(repo, { operation: "push", timeoutMs: 0 });
    const ctl = new AbortController();
    const waiting = acquireRepoLock(repo, {
      operation: "pull",
      timeoutMs: 10_000,
      signal: ctl.signal,
    });
    setTimeout(() => ctl.abort(), 50);
    await assert.rejects(waiting, InterruptedError);
    await held.release();
  });
});

Deno.test("processes racing for a stale repo lock never hold it together", async () => {
  await withTempDir(async (repo) => {
    await plant(repo, record(await deadPid()));
    const script = join(repo, "contender.ts");
    const mod = new URL("./repo_lock.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { acquireRepoLock } from ${JSON.stringify(mod)};
const repo = Deno.args[0];
for (let i = 0; i < 3; i++) {
  const lock = await acquireRepoLock(repo, { operation: "race", timeoutMs: 20000 });
  // Create-exclusive marker: fails if another holder is inside.
  await Deno.writeTextFile(repo + "/inside", String(Deno.pid), { createNew: true });
  await new Promise((r) => setTimeout(r, 10));
  await Deno.remove(repo + "/inside");
  await lock.release();
}
`,
    );
    const runs = Array.from({ length: 4 }, () =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--config", CONFIG, script, repo],
        stdout: "null",
        stderr: "piped",
        env: { RUST_BACKTRACE: "0" },
      }).output());
    for (const out of await Promise.all(runs)) {
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    }
    assert.equal(await inspectRepoLock(repo), null);
  });
});
