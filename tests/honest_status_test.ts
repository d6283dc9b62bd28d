/**
 * End-to-end: honest statuses (issue 8, point 7) on the filesystem
 * datastore. A lost lease is `lease-lost` (exit 75) in one sentence that
 * says whether the lock was released by force or taken over; a file that
 * changed while it was pushed is `changed`; a file/directory clash on pull
 * is found before anything is removed; a manifest whose size disagrees with
 * its intact blob is a corrupt manifest, never advice to delete the blob.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  type CliProcess,
  describe,
  expectCode,
  expectJson,
  expectOneLineError,
  HOST,
  pseudoRandomBytes,
  type Repo,
  Sandbox,
  sha256,
  slowStore,
  waitFor,
  writeModelFiles,
} from "./_helpers.ts";
import { contents, generations, rowOf } from "./_data_loss.ts";

/**
 * A push of vpc/m1 (8 files, one blob at a time) through the slow-store
 * decorator: `hold: "lock"` waits 4 s under its lock before it reads the
 * head, and returns once the lock is held; `hold: "upload"` waits 700 ms
 * before each upload, and returns once the first blob is stored.
 */
async function slowPush(
  sb: Sandbox,
  repo: Repo,
  opts: { hold: "lock" | "upload" },
): Promise<CliProcess> {
  await writeModelFiles(repo, "vpc/m1", { count: 8, size: 1500, seed: 5 });
  const slow = slowStore(sb, opts.hold === "lock" ? { head: 4_000 } : { putBlob: 700 });
  const proc = repo.spawn(["push", "--json", "--jobs", "1", ...slow.args, "vpc/m1"], {
    env: slow.env,
  });
  await waitFor(
    opts.hold === "lock" ? "the push holds the lock on vpc/m1" : "a blob stored",
    async () => {
      if (proc.exited) throw new Error(`push ended early\n${describe(await proc.done)}`);
      if (opts.hold === "lock") return (await sb.datastore.lock("vpc/m1"))?.pid === proc.pid;
      return (await sb.datastore.blobs()).length >= 1;
    },
  );
  return proc;
}

/** Checks a push that lost its lease: lease-lost, exit 75, one error sentence matching `how`. */
async function expectLeaseLost(sb: Sandbox, proc: CliProcess, how: RegExp): Promise<void> {
  const res = await proc.done;
  const line = expectOneLineError(res, 75, "the push whose lease was lost");
  assert.match(line, how, describe(res));
  assert.match(line, /work stopped before committing/);
  const doc = expectJson(res, "modelsync.push/1");
  assert.equal(rowOf(doc, "vpc/m1")?.status, "lease-lost", describe(res));
  assert.equal((doc.summary as Record<string, number>).leaseLost, 1);
  assert.equal((doc.summary as Record<string, number>).lockTimeout, 0);
  assert.deepEqual(await generations(sb, "vpc/m1"), [], "nothing committed after the loss");
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
}

Deno.test("a lease lost to a force release is lease-lost (exit 75): the lock was released by force", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a", { MODELSYNC_HOLDER: "victim", MODELSYNC_LOCK_TTL: "1s" });
  const op = await sb.repo("op", { MODELSYNC_HOLDER: "operator" });
  const proc = await slowPush(sb, a, { hold: "lock" });
  expectCode(await op.run(["lock", "release", "--force", "vpc/m1"]), 0, "force release");
  await expectLeaseLost(
    sb,
    proc,
    /^modelsync: error: Lost the lock on vpc\/m1: it was released by force \(its record is gone\); /,
  );
  expectCode(await a.run(["push"]), 0, "the rerun completes");
  assert.equal((await sb.datastore.current("vpc/m1"))?.files.length, 8);
});

Deno.test("a lease whose lock was taken over is lease-lost (exit 75) naming the new holder", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a", { MODELSYNC_HOLDER: "victim", MODELSYNC_LOCK_TTL: "1s" });
  const proc = await slowPush(sb, a, { hold: "lock" });
  // Another process takes the lock over: its record, with its nonce, replaces the victim's
  // (written again if a renewal in flight put the victim's back).
  const now = new Date().toISOString();
  const thief = {
    key: "vpc/m1",
    holder: "thief",
    host: HOST,
    pid: Deno.pid,
    operation: "push",
    acquiredAt: now,
    renewedAt: now,
    ttlMs: 600_000,
    nonce: randomBytes(16).toString("hex"),
    seq: 0,
  };
  await waitFor("the victim to notice", async () => {
    if (proc.exited) return true;
    if ((await sb.datastore.lock("vpc/m1"))?.nonce !== thief.nonce) {
      await sb.datastore.plantLock("vpc/m1", thief);
    }
    return false;
  });
  await expectLeaseLost(
    sb,
    proc,
    new RegExp(
      `^modelsync: error: Lost the lock on vpc/m1: it was taken over by thief@${HOST} pid ` +
        `${Deno.pid} \\(push, since ${now.replace(/\./g, "\\.")}\\); `,
    ),
  );
  assert.equal((await sb.datastore.lock("vpc/m1"))?.nonce, thief.nonce, "the new holder's lock");
});

Deno.test("a file that changed while it was pushed is status changed (exit 4), not conflict; the rerun sends it", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: the test acts on single blobs
  const proc = await slowPush(sb, a, { hold: "upload" });
  const changed = new Map<string, Uint8Array>();
  for (let i = 0; i < 8; i++) {
    const rel = `part-${String(i).padStart(3, "0")}.bin`;
    const bytes = pseudoRandomBytes(2000, 1000 + i);
    await a.write(`models/vpc/m1/${rel}`, bytes);
    changed.set(rel, bytes);
  }
  const res = await proc.done;
  expectCode(res, 4, "push of files that changed");
  const doc = expectJson(res, "modelsync.push/1");
  const row = rowOf(doc, "vpc/m1");
  assert.equal(row?.status, "changed", describe(res));
  assert.match(row?.error ?? "", /changed while being pushed\. Rerun once it settles\./);
  assert.equal((doc.summary as Record<string, number>).changed, 1);
  assert.equal((doc.summary as Record<string, number>).conflict, 0);
  assert.deepEqual(await generations(sb, "vpc/m1"), [], "nothing committed");
  assert.deepEqual(await sb.datastore.integrityProblems(), []);
  for (const [rel, bytes] of changed) {
    assert.equal(sha256(await a.readBytes(`models/vpc/m1/${rel}`)), sha256(bytes), "kept");
  }
  expectCode(await a.run(["push"]), 0, "rerun once the files settled");
  const head = await sb.datastore.current("vpc/m1");
  assert.deepEqual(
    head?.files.map((f) => f.sha256),
    [...changed.values()].map((b) => sha256(b)),
  );
});

Deno.test("a file/directory clash on pull is found while planning: nothing is removed or replaced", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const b = await sb.repo("b");
  await a.write("models/vpc/m1/a.txt", "a one\n");
  await a.write("models/vpc/m1/b.txt", "b one\n");
  expectCode(await a.run(["push"]), 0);
  expectCode(await b.run(["pull"]), 0);
  // a changes a.txt, removes b.txt and adds w/x.txt; b has a local file w.
  await a.write("models/vpc/m1/a.txt", "a two\n");
  await Deno.remove(a.path("models/vpc/m1/b.txt"));
  await a.write("models/vpc/m1/w/x.txt", "x\n");
  expectCode(await a.run(["push"]), 0);
  await b.write("models/vpc/m1/w", "b's file w\n");

  const res = await b.run(["pull", "--json"]);
  expectCode(res, 4, "pull of a clash");
  const row = rowOf(expectJson(res, "modelsync.pull/1"), "vpc/m1");
  assert.equal(row?.status, "conflict", describe(res));
  assert.deepEqual(row?.conflicts, ["w"]);
  assert.match(row?.error ?? "", /Nothing was changed/);
  assert.deepEqual(await contents(b.modelDir("vpc/m1")), {
    "a.txt": "a one\n",
    "b.txt": "b one\n",
    "w": "b's file w\n",
  }, "nothing removed or replaced");
  // Something the scan does not sync (here a symlink) in the way counts too.
  await Deno.remove(b.path("models/vpc/m1/w"));
  await Deno.symlink("nowhere", b.path("models/vpc/m1/w"));
  expectCode(await b.run(["pull"]), 4, "pull of a clash with a symlink");
  assert.equal(await b.read("models/vpc/m1/b.txt"), "b one\n");
  await Deno.remove(b.path("models/vpc/m1/w"));
  expectCode(await b.run(["pull"]), 0, "pull once it is moved aside");
  assert.deepEqual(await contents(b.modelDir("vpc/m1")), await contents(a.modelDir("vpc/m1")));
});

Deno.test("a manifest whose size disagrees with its intact blob is a corrupt manifest; the blob is kept", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: the test acts on single blobs
  const b = await sb.repo("b");
  await a.write("models/vpc/m1/a.txt", "a one\n");
  await a.write("models/vpc/m1/b.txt", "b one\n");
  expectCode(await a.run(["push"]), 0);
  const manifest = (await sb.datastore.current("vpc/m1"))!;
  manifest.files[0].size += 3;
  await sb.datastore.setHead("vpc/m1", manifest);
  const blob = sb.datastore.blobPath(manifest.files[0].sha256);

  const line = expectOneLineError(await b.run(["pull"]), 6, "pull of a manifest with a bad size");
  assert.match(line, /manifest of vpc\/m1 \(file "a\.txt"\) says blob [0-9a-f]{64} is 9 bytes/);
  assert.match(line, /intact .*holds 6 bytes: the manifest is corrupt/);
  assert.doesNotMatch(line, /Delete that blob/);
  assert.equal(await Deno.readTextFile(blob), "a one\n", "the blob is kept");
  assert.deepEqual(await b.modelFiles("vpc/m1"), [], "nothing written");
});
