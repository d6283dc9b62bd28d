/**
 * End-to-end: the repository lock `.modelsync/repo.lock` is a lease. A holder
 * on another host (a container, a renamed laptop, a home shared over NFS)
 * that still renews is waited for, and the wait says where it is; one that
 * stopped renewing is taken over after its lease; a running command really
 * renews its record; a record claiming an impossible lease is corrupt.
 */
import assert from "node:assert/strict";
import {
  describe,
  expectCode,
  HOST,
  type Repo,
  Sandbox,
  slowStore,
  waitFor,
  writeModelFiles,
} from "./_helpers.ts";

const OTHER_HOST = "build-container-7";

function repoLock(repo: Repo): string {
  return repo.path(".modelsync/repo.lock");
}

/** Writes a repo.lock by hand, as another host's modelsync would have. */
async function plantRepoLock(
  repo: Repo,
  fields: { renewedAt: Date; ttlMs?: number; host?: string; pid?: number },
  opts: { mtime?: Date } = {},
): Promise<void> {
  const record = {
    pid: fields.pid ?? 4242,
    host: fields.host ?? OTHER_HOST,
    operation: "flush",
    startedAt: new Date(fields.renewedAt.getTime() - 60_000).toISOString(),
    renewedAt: fields.renewedAt.toISOString(),
    ttlMs: fields.ttlMs ?? 30_000,
    nonce: "feedc0ffee",
  };
  await Deno.writeTextFile(repoLock(repo), JSON.stringify(record) + "\n");
  if (opts.mtime !== undefined) await Deno.utime(repoLock(repo), opts.mtime, opts.mtime);
}

async function readRepoLock(repo: Repo): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await Deno.readTextFile(repoLock(repo)));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

Deno.test("repo.lock from another host: waited for while renewed, naming the host; taken over once its lease ran out", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("r");
  await repo.write("models/vpc/m1/a.txt", "alpha\n");

  // A holder on another host that renewed just now: its pid means nothing
  // here, so it is waited for, and the wait says where it runs.
  await plantRepoLock(repo, { renewedAt: new Date() });
  const waited = await repo.run(["push", "--lock-timeout", "1s"]);
  expectCode(waited, 75, "push behind a live holder on another host");
  const warnings = waited.stderr.split("\n").filter((l) => l.startsWith("modelsync: warning: "));
  assert.equal(warnings.length, 1, describe(waited));
  assert.match(
    warnings[0],
    new RegExp(
      `Waiting for the repository lock of ${repo.dir}: held by pid 4242 on another host ` +
        `\\(${OTHER_HOST}\\), flush since \\d{4}-\\d\\d-\\d\\dT[^,]+, renewed [\\d.]+m?s ago\\.$`,
    ),
    describe(waited),
  );
  const error = waited.stderr.split("\n").filter((l) => l.startsWith("modelsync: error: "));
  assert.equal(error.length, 1, describe(waited));
  assert.ok(error[0].includes(`on another host (${OTHER_HOST})`), describe(waited));
  assert.equal((await readRepoLock(repo))?.nonce, "feedc0ffee", "the live lock is left alone");
  assert.equal(await sb.datastore.current("vpc/m1"), null, "nothing pushed");

  // The same holder, crashed: no renewal for 10 minutes. It is taken over.
  await plantRepoLock(repo, { renewedAt: new Date(Date.now() - 600_000) });
  const push = expectCode(await repo.run(["push", "--lock-timeout", "5s"]), 0, "push");
  assert.match(
    push.stderr,
    new RegExp(
      `warning: Took over the stale repository lock .*repo\\.lock \\(pid 4242 on another host ` +
        `\\(${OTHER_HOST}\\), flush since .*\\): its lease expired 9m\\d*s? ago`,
    ),
    describe(push),
  );
  assert.equal((await sb.datastore.current("vpc/m1"))?.files.length, 1, "pushed");
  assert.equal(await readRepoLock(repo), null, "released at the end");
});

Deno.test("a running command renews repo.lock (atomically) while it works, and releases it", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("r", { MODELSYNC_LOCK_TTL: "1s" });
  await writeModelFiles(repo, "vpc/m1", { count: 8, size: 1024, seed: 5 });
  const slow = slowStore(sb, { putBlob: 500 });
  const proc = repo.spawn(["push", "--jobs", "1", ...slow.args], { env: slow.env });
  let first: Record<string, unknown> | null = null;
  await waitFor("repo.lock held by the push", async () => {
    if (proc.exited) throw new Error(`push ended early\n${describe(await proc.done)}`);
    first = await readRepoLock(repo);
    return first?.pid === proc.pid;
  });
  assert.equal(first!.host, HOST);
  assert.equal(first!.operation, "push");
  assert.equal(first!.ttlMs, 1000, "the lease time comes from --lock-ttl");
  // Every read sees a whole record (replaced by rename), until it is renewed.
  let renewed: Record<string, unknown> | null = null;
  await waitFor("repo.lock renewed", async () => {
    if (proc.exited) throw new Error(`push ended before renewing\n${describe(await proc.done)}`);
    renewed = await readRepoLock(repo);
    assert.notEqual(renewed, null, "the lock never disappears while held");
    return renewed!.renewedAt !== first!.renewedAt;
  }, { intervalMs: 5 });
  assert.equal(renewed!.nonce, first!.nonce, "the same holding");
  assert.equal(renewed!.startedAt, first!.startedAt);
  assert.ok(Date.parse(renewed!.renewedAt as string) > Date.parse(first!.renewedAt as string));
  // Renewed again: a second read later still moved on.
  await waitFor("repo.lock renewed twice", async () => {
    if (proc.exited) return true; // finished: the second renewal is not needed to pass
    const again = await readRepoLock(repo);
    return again !== null && again.renewedAt !== renewed!.renewedAt;
  });
  const res = expectCode(await proc.done, 0, "slow push with a 1s lease");
  assert.doesNotMatch(res.stderr, /Lost the repository lock|Took over/, describe(res));
  assert.equal(await readRepoLock(repo), null, "released at the end");
  assert.equal((await sb.datastore.current("vpc/m1"))?.files.length, 8);
  const leftovers = [...Deno.readDirSync(repo.path(".modelsync"))].map((e) => e.name)
    .filter((n) => n.startsWith("repo.lock.") && n.endsWith(".tmp"));
  assert.deepEqual(leftovers, [], "no temporary lock files left");
});

Deno.test("a holder whose repo.lock was taken over stops before committing (exit 75)", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("r", { MODELSYNC_LOCK_TTL: "1s" });
  await writeModelFiles(repo, "vpc/m1", { count: 10, size: 1024, seed: 7 });
  const slow = slowStore(sb, { putBlob: 600 });
  const proc = repo.spawn(["push", "--jobs", "1", "--json", ...slow.args], { env: slow.env });
  await waitFor("repo.lock held by the push", async () => {
    if (proc.exited) throw new Error(`push ended early\n${describe(await proc.done)}`);
    return (await readRepoLock(repo))?.pid === proc.pid;
  });
  // Another host took the lock over (as after a pause longer than the lease): replaced atomically.
  const tmp = repo.path(".modelsync/planted.tmp");
  await Deno.writeTextFile(
    tmp,
    JSON.stringify({
      pid: 4242,
      host: OTHER_HOST,
      operation: "flush",
      startedAt: new Date().toISOString(),
      renewedAt: new Date().toISOString(),
      ttlMs: 30_000,
      nonce: "feedc0ffee",
    }),
  );
  await Deno.rename(tmp, repoLock(repo));
  const res = await proc.done;
  expectCode(res, 75, "push that lost its repository lock");
  const errors = res.stderr.split("\n").filter((l) => l.startsWith("modelsync: error: "));
  assert.equal(errors.length, 1, describe(res));
  assert.match(
    errors[0],
    new RegExp(
      `Lost the repository lock of ${repo.dir} \\(it was taken over by pid 4242 on another host ` +
        `\\(${OTHER_HOST}\\), .*\\); work stopped\\. Rerun the command\\.$`,
    ),
    describe(res),
  );
  assert.equal(await sb.datastore.current("vpc/m1"), null, "nothing committed");
  assert.equal(
    (await readRepoLock(repo))?.nonce,
    "feedc0ffee",
    "the new holder's lock is left alone",
  );
});

Deno.test("repo.lock claiming a 10-year lease or a renewal years ahead is corrupt: taken over once unchanged", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("r");
  const years = 10 * 365 * 86_400_000;
  const variants = [
    { fields: { renewedAt: new Date(), ttlMs: years }, why: /claims a ttl of 3650d/ },
    { fields: { renewedAt: new Date(Date.now() + years) }, why: /in the future/ },
  ];
  for (const [i, v] of variants.entries()) {
    await repo.write(`models/vpc/m${i}/a.txt`, `model ${i}\n`);
    // Fresh: a corrupt record is waited for (it may be being written).
    await plantRepoLock(repo, { ...v.fields, host: HOST, pid: 1 });
    const fresh = await repo.run(["push", "--lock-timeout", "500ms"]);
    expectCode(fresh, 75, "push behind a fresh corrupt repo.lock");
    const errors = fresh.stderr.split("\n").filter((l) => l.startsWith("modelsync: error: "));
    assert.equal(errors.length, 1, describe(fresh));
    const line = errors[0];
    assert.match(line, /repo\.lock is corrupt \(it/, describe(fresh));
    assert.match(line, v.why, describe(fresh));
    // Unchanged for two minutes: taken over.
    const old = new Date(Date.now() - 120_000);
    await plantRepoLock(repo, { ...v.fields, host: HOST, pid: 1 }, { mtime: old });
    const push = expectCode(await repo.run(["push", "--lock-timeout", "5s"]), 0, "push");
    assert.match(
      push.stderr,
      /Took over the stale repository lock .*: it is corrupt \(/,
      describe(push),
    );
    assert.match(push.stderr, v.why, describe(push));
    assert.equal((await sb.datastore.current(`vpc/m${i}`))?.files.length, 1);
  }
});
