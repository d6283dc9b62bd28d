import assert from "node:assert/strict";
import { hostname } from "node:os";
import { DatastoreError, NotFoundError, UsageError } from "../../errors.ts";
import { runConformance } from "../../provider/conformance.ts";
import type { Provider, ProviderContext } from "../../provider/contract.ts";
import { guardProvider } from "../../provider/guard.ts";
import { listAllRecords } from "../../provider/keys.ts";
import {
  adminSql,
  closeAdmin,
  dropSchema,
  freshSchema,
  PG_URL,
  PGBOUNCER_URL,
  pgbouncerTestOptions,
  pgTestOptions,
} from "./_test_server.ts";
import { PostgresProvider, type PostgresProviderOptions } from "./provider.ts";

const opts = pgTestOptions();
const bouncerOpts = pgbouncerTestOptions();

function ctx(extra: Partial<ProviderContext> = {}): ProviderContext {
  return { callTimeoutMs: 30_000, host: hostname(), pid: Deno.pid, baseDir: "/", ...extra };
}

/** A fresh, initialised provider on its own schema, dropped when closed. */
async function fresh(
  o: PostgresProviderOptions & { url?: string; hint?: string } = {},
): Promise<PostgresProvider> {
  const schema = freshSchema(o.hint ?? "prov");
  const p = new PostgresProvider({ url: o.url ?? PG_URL!, schema }, ctx(), { env: {}, ...o });
  await p.init();
  const close = p.close.bind(p);
  p.close = async () => {
    await close();
    await dropSchema(schema);
  };
  return p;
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test({ name: "the postgres provider passes the conformance kit", ...opts }, async (t) => {
  await runConformance(t, { name: "postgres", factory: () => fresh({ hint: "conf" }) });
});

Deno.test(
  { name: "the postgres provider passes the conformance kit through PgBouncer", ...bouncerOpts },
  async (t) => {
    await runConformance(t, {
      name: "postgres via pgbouncer",
      factory: () => fresh({ url: PGBOUNCER_URL!, hint: "confpgb" }),
    });
  },
);

Deno.test({ name: "postgres: listings page by key, in byte order", ...opts }, async () => {
  const p = await fresh({ pageSize: 3 });
  try {
    const keys = ["a/B", "a/a", "a/_x", "a/-y", "a/z/1", "a/z/2", "a/@s", "ab", "a/.d"];
    for (const k of keys) assert.ok(await p.createRecord(k, enc(k)));
    const listed = (await listAllRecords(p, "a/")).map((r) => r.key);
    const want = keys.filter((k) => k.startsWith("a/")).sort((x, y) => (x < y ? -1 : 1));
    assert.deepEqual(listed, want);
    // LIKE wildcards in a prefix are plain characters.
    assert.deepEqual((await listAllRecords(p, "a/_")).map((r) => r.key), ["a/_x"]);
  } finally {
    await p.close();
  }
});

Deno.test({
  name: "postgres: a missing schema is NotFound; open of an older schema says init",
  ...opts,
}, async () => {
  const schema = freshSchema("open");
  const p = new PostgresProvider({ url: PG_URL!, schema }, ctx(), { env: {} });
  try {
    const err = await p.open().then(() => null, (e) => e);
    assert.ok(err instanceof NotFoundError, String(err));
    assert.match(err.message, /not initialised.*modelsync init/);
    await p.init();
    await p.init(); // twice is fine
    await p.open();
    await adminSql().unsafe(`DELETE FROM "${schema}".migrations`);
    const behind = await p.open().then(() => null, (e) => e);
    assert.ok(behind instanceof UsageError, String(behind));
    assert.match(behind.message, /schema version 0, this modelsync needs 1: run "modelsync init"/);
    await adminSql().unsafe(
      `INSERT INTO "${schema}".migrations (version, description) VALUES (1, 'x'), (7, 'future')`,
    );
    const ahead = await p.open().then(() => null, (e) => e);
    assert.ok(ahead instanceof UsageError, String(ahead));
    assert.match(ahead.message, /schema version 7, newer .*upgrade modelsync/);
    await assert.rejects(p.init(), /upgrade modelsync/);
  } finally {
    await p.close();
    await dropSchema(schema);
  }
});

Deno.test({ name: "postgres: concurrent inits of one schema all succeed", ...opts }, async () => {
  const schema = freshSchema("initrace");
  const ps = Array.from(
    { length: 4 },
    () => new PostgresProvider({ url: PG_URL!, schema }, ctx(), { env: {} }),
  );
  try {
    await Promise.all(ps.map((p) => p.init()));
    await ps[0].open();
  } finally {
    await Promise.all(ps.map((p) => p.close()));
    await dropSchema(schema);
  }
});

Deno.test({
  name: "postgres: an unreachable server is a retryable DatastoreError naming it",
  ...opts,
}, async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const p = guardProvider(
    new PostgresProvider(
      { url: `postgres://x:sekrit@127.0.0.1:${port}/db`, schema: "s" },
      ctx({
        callTimeoutMs: 2_000,
      }),
      { env: {} },
    ),
    { callTimeoutMs: 2_000, attempts: 2, backoff: { initialMs: 10, maxMs: 20 } },
  );
  try {
    const err = await p.getRecord("config").then(() => null, (e) => e);
    assert.ok(err instanceof DatastoreError, String(err));
    assert.ok(err.retryable);
    assert.match(err.message, new RegExp(`postgres://x@127\\.0\\.0\\.1:${port}/db \\(schema s\\)`));
    assert.ok(!err.message.includes("sekrit"));
  } finally {
    await p.close();
  }
});

Deno.test({
  name: "postgres: a wrong password is refused, names the role, never the password",
  ...opts,
}, async () => {
  const role = `ms_pw_${Deno.pid}_${Math.floor(Math.random() * 1e6)}`;
  const sql = adminSql();
  await sql.unsafe(
    `CREATE ROLE ${role} LOGIN PASSWORD 'right-one' IN ROLE modelsync_password_auth`,
  );
  const u = new URL(PG_URL!);
  const url = `postgres://${role}@${u.host}${u.pathname}`;
  const p: Provider = new PostgresProvider({ url, schema: "s" }, ctx(), {
    env: { PGPASSWORD: "Wr0ng-Pa55" },
  });
  try {
    const err = await p.getRecord("config").then(() => null, (e) => e);
    assert.ok(err instanceof DatastoreError, String(err));
    assert.equal(err.retryable, false);
    assert.match(
      err.message,
      new RegExp(`refused role "${role}" \\(28P01; the password came from PGPASSWORD\\)`),
    );
    assert.ok(!err.message.includes("Wr0ng-Pa55"));
    const ok = new PostgresProvider({ url, schema: "s" }, ctx(), {
      env: { PGPASSWORD: "right-one" },
    });
    try {
      const e2 = await ok.open().then(() => null, (e) => e);
      assert.ok(e2 instanceof NotFoundError, String(e2)); // authenticated: the schema is missing
    } finally {
      await ok.close();
    }
  } finally {
    await p.close();
    await sql.unsafe(`DROP ROLE ${role}`);
    await closeAdmin();
  }
});

for (
  const [through, url, o] of [["", () => PG_URL!, opts], [
    " through PgBouncer",
    () => PGBOUNCER_URL!,
    bouncerOpts,
  ]] as const
) {
  Deno.test({
    name: `postgres${through}: every statement has the server's deadline (statement_timeout)`,
    ...o,
  }, async () => {
    const schema = freshSchema("deadline");
    const app = `ms_${schema.slice(-8)}`;
    const p = new PostgresProvider(
      { url: `${url()}?application_name=${app}`, schema },
      ctx({ callTimeoutMs: 1_000 }),
      { env: {} },
    );
    const holder = await adminSql().reserve();
    try {
      await p.init();
      await p.createRecord("k", enc("v"));
      // Another session holds the table: the read waits until the server cancels it.
      await holder.unsafe("BEGIN");
      await holder.unsafe(`LOCK TABLE "${schema}".records IN ACCESS EXCLUSIVE MODE`);
      const err = await p.getRecord("k").then(() => null, (e) => e);
      assert.ok(err instanceof DatastoreError, String(err));
      assert.ok(err.retryable, err.message);
      assert.match(err.message, /57014 canceling statement due to statement timeout/);
      await holder.unsafe("ROLLBACK");
      // The setting was local to that transaction: nothing is left on the connection.
      assert.equal(dec((await p.getRecord("k"))!.bytes), "v");
      const [row] = await adminSql().unsafe(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1
           AND state = 'idle in transaction'`,
        [app],
      );
      assert.equal(row.n, 0, "no session left inside a transaction");
    } finally {
      await holder.unsafe("ROLLBACK").catch(() => {});
      holder.release();
      await p.close();
      await dropSchema(schema);
    }
  });
}
