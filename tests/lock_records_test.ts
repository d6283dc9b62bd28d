/**
 * End-to-end: a datastore lock record that claims an impossible lease (a ttl
 * of ten years, a renewal time years ahead) is corrupt, not a live lock held
 * for years: `lock status` shows it as held by an unknown (corrupt record)
 * holder, a writer waits for it while it is fresh and takes it over once it
 * has been unchanged for the corrupt-record period (30 s + skew margin; the
 * test plants an old mtime). `--lock-ttl` refuses leases over 24 h, so
 * modelsync never writes such a record itself.
 */
import assert from "node:assert/strict";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import {
  describe,
  expectCode,
  expectJson,
  expectOneLineError,
  type Repo,
  Sandbox,
} from "./_helpers.ts";
import { S3_ENDPOINT, S3Sandbox, s3TestOptions } from "./_s3.ts";

const YEARS = 10 * 365 * 86_400_000;

interface LockRow {
  key: string;
  holder: string;
  state: string;
  staleReason?: string;
}

async function lockRows(repo: Repo): Promise<Map<string, LockRow>> {
  const res = expectCode(await repo.run(["lock", "status", "--json"]), 0, "lock status");
  const rows = expectJson(res, "modelsync.locks/1").locks as LockRow[];
  return new Map(rows.map((r) => [r.key, r]));
}

/** Writes a well-formed model lock record by hand, with the given lease fields. */
async function plantLock(
  sb: Sandbox,
  model: string,
  lease: { renewedAt: Date; ttlMs: number },
  mtime?: Date,
): Promise<void> {
  const path = sb.datastore.lockPath(model);
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      key: model,
      holder: "mallory",
      host: "far-away",
      pid: 4242,
      operation: "push",
      acquiredAt: new Date(lease.renewedAt.getTime() - 1000).toISOString(),
      renewedAt: lease.renewedAt.toISOString(),
      ttlMs: lease.ttlMs,
      nonce: "planted0nonce",
      seq: 0,
    }) + "\n",
  );
  if (mtime !== undefined) await Deno.utime(path, mtime, mtime);
}

Deno.test("a lock record claiming a 10-year ttl or a renewal years ahead is corrupt: waited for while fresh, taken over once unchanged", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("r");
  const cases = [
    { model: "vpc/ttl", lease: { renewedAt: new Date(), ttlMs: YEARS }, why: /ttl of 3650d/ },
    {
      model: "vpc/future",
      lease: { renewedAt: new Date(Date.now() + YEARS), ttlMs: 30_000 },
      why: /renewal time .* is 3650d in the future/,
    },
  ];
  for (const c of cases) {
    await repo.write(`models/${c.model}/a.txt`, `${c.model}\n`);
    await plantLock(sb, c.model, c.lease);
  }

  // Fresh: shown as held by an unknown (corrupt record) holder, and waited for.
  let rows = await lockRows(repo);
  for (const c of cases) {
    const row = rows.get(c.model);
    assert.equal(row?.holder, "unknown (corrupt record)", JSON.stringify(row));
    assert.equal(row?.state, "corrupt", JSON.stringify(row));
  }
  const waited = await repo.run(["push", "--lock-timeout", "500ms", "vpc/ttl"]);
  expectCode(waited, 75, "push behind a fresh corrupt record");
  assert.match(waited.stderr, /held by a corrupt lock record/, describe(waited));

  // Unchanged for an hour: stale, with the reason, and taken over by a push.
  const hourAgo = new Date(Date.now() - 3_600_000);
  for (const c of cases) await plantLock(sb, c.model, c.lease, hourAgo);
  rows = await lockRows(repo);
  for (const c of cases) {
    const row = rows.get(c.model);
    assert.equal(row?.holder, "unknown (corrupt record)", JSON.stringify(row));
    assert.equal(row?.state, "stale", JSON.stringify(row));
    assert.match(row?.staleReason ?? "", /^corrupt record \(/, JSON.stringify(row));
    assert.match(row?.staleReason ?? "", c.why, JSON.stringify(row));
  }
  const text = expectCode(await repo.run(["lock", "status"]), 0, "lock status (text)");
  assert.match(
    text.stdout,
    /vpc\/ttl\s+stale\s+corrupt record .*stale: corrupt record \(it claims a ttl/,
    describe(text),
  );

  const push = expectCode(await repo.run(["push", "--json", "--lock-timeout", "5s"]), 0, "push");
  const took = push.stderr.split("\n").filter((l) => l.includes("Took over the stale lock"));
  assert.equal(took.length, 2, describe(push));
  for (const c of cases) {
    assert.ok(took.some((l) => l.includes(c.model)), describe(push));
    assert.equal((await sb.datastore.current(c.model))?.files.length, 1, `${c.model} pushed`);
  }
  assert.equal((await lockRows(repo)).size, 0, "no lock left behind");
});

Deno.test("--lock-ttl over 24h is refused (exit 2), so no such record is ever written", async () => {
  await using sb = await Sandbox.create();
  const repo = await sb.repo("r");
  await repo.write("models/vpc/m1/a.txt", "a\n");
  for (const args of [["--lock-ttl", "25h"], ["--lock-ttl", "3650d"]]) {
    const line = expectOneLineError(await repo.run([...args, "push"]), 2, args.join(" "));
    assert.match(line, /Invalid --lock-ttl ".*": use at most 24h\./);
  }
  const env = await repo.run(["push"], { env: { MODELSYNC_LOCK_TTL: "2d" } });
  assert.match(expectOneLineError(env, 2, "MODELSYNC_LOCK_TTL=2d"), /at most 24h/);
  assert.equal(await sb.datastore.current("vpc/m1"), null, "nothing pushed");
  expectCode(await repo.run(["--lock-ttl", "24h", "push"]), 0, "24h is the most allowed");
});

Deno.test({
  name: "S3: a lock record claiming a 10-year ttl is corrupt, not a lock held for years",
  ...s3TestOptions(),
}, async () => {
  await using s3 = await S3Sandbox.create("corrupt-ttl");
  const repo = await s3.sb.repo("r");
  await repo.write("models/vpc/ttl/a.txt", "a\n");
  const now = new Date().toISOString();
  const client = new S3Client({
    endpoint: S3_ENDPOINT!,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  });
  try {
    await client.send(
      new PutObjectCommand({
        Bucket: s3.bucket,
        Key: s3.store.key("leases/models/vpc/ttl"),
        Body: JSON.stringify({
          key: "vpc/ttl",
          holder: "mallory",
          host: "far-away",
          pid: 4242,
          operation: "push",
          acquiredAt: now,
          renewedAt: now,
          ttlMs: YEARS,
          nonce: "planted0nonce",
          seq: 0,
        }),
      }),
    );
  } finally {
    client.destroy();
  }
  const row = (await lockRows(repo)).get("vpc/ttl");
  assert.equal(row?.holder, "unknown (corrupt record)", JSON.stringify(row));
  // Fresh (the server's Last-Modified is now): waited for, like any corrupt record.
  const waited = await repo.run(["push", "--lock-timeout", "500ms"]);
  expectCode(waited, 75, "push behind a fresh corrupt record");
  assert.match(waited.stderr, /held by a corrupt lock record/, describe(waited));
});
