/**
 * End-to-end faults on a PostgreSQL datastore: a wrong password (exit 6
 * naming the datastore, the password nowhere in the output of any command,
 * `--json` or `-v`), and the server going away in the middle of a push
 * (exit 6, local data untouched, nothing committed, a rerun completes once
 * it is back), and a role that may only read (pull works, push exits 6).
 * The server "goes away" by the test proxy closing every
 * connection and refusing new ones, after PostgreSQL itself terminated the
 * CLI's sessions (`pg_terminate_backend`: 57P01, what clients see when the
 * server shuts down).
 */
import assert from "node:assert/strict";
import {
  describe,
  expectCode,
  expectJson,
  expectOneLineError,
  reportByModel,
  type RunResult,
  slowStore,
  snapshot,
  waitFor,
  writeModelFiles,
} from "./_helpers.ts";
import { adminSql, PASSWORD_GROUP, PG_URL, PgSandbox, pgTestOptions } from "./_pg.ts";

const SECRET = "Pg-Wr0ng-Secret-9137";

function assertNoSecret(res: RunResult, what: string): void {
  for (const [stream, text] of [["stdout", res.stdout], ["stderr", res.stderr]]) {
    for (const needle of [SECRET, SECRET.slice(3, 12), encodeURIComponent(SECRET)]) {
      assert.ok(
        !text.includes(needle),
        `${what}: the password appears on ${stream}\n${describe(res)}`,
      );
    }
  }
}

Deno.test({
  name: "PostgreSQL: a wrong password exits 6 naming the datastore; the password is never printed",
  ...pgTestOptions(),
  async fn() {
    const role = `ms_pw_${Deno.pid}_${Math.floor(Math.random() * 1e6)}`;
    await adminSql().unsafe(
      `CREATE ROLE ${role} LOGIN PASSWORD 'the-right-one' IN ROLE ${PASSWORD_GROUP}`,
    );
    await using pg = await PgSandbox.create("badpw");
    try {
      // The repository is set up by the superuser; the wrong password is given per run.
      const repo = await pg.sb.repo("a");
      await repo.write("models/vpc/m1/a.txt", "local data\n");
      const before = await snapshot(repo.path("models"));
      const u = new URL(PG_URL!);
      const asRole = `postgres://${role}@${u.host}${u.pathname}?schema=${pg.schema}`;
      const inUrl = `postgres://${role}:${encodeURIComponent(SECRET)}@${u.host}${u.pathname}` +
        `?schema=${pg.schema}`;
      const where = `postgres://${role}@${u.host}${u.pathname} (schema ${pg.schema})`;
      const runs: [string[], Record<string, string>][] = [
        [["push", "--datastore", asRole], { PGPASSWORD: SECRET }],
        [["pull", "-v", "--datastore", asRole], { PGPASSWORD: SECRET }],
        [["flush", "--json", "--datastore", asRole], { PGPASSWORD: SECRET }],
        [["status", "--remote", "--datastore", inUrl], {}],
        [["caps", "--probe", "--json", "--datastore", inUrl], {}],
        [["lock", "status", "--datastore", inUrl, "-v"], {}],
      ];
      for (const [args, env] of runs) {
        const res = await repo.run(args, { env });
        const what = `modelsync ${args.slice(0, 2).join(" ")} with a wrong password`;
        assertNoSecret(res, what);
        const line = args.includes("-v")
          ? expectCode(res, 6, what).stderr.split("\n").filter((l) =>
            l.startsWith("modelsync: error: ")
          ).join("\n")
          : expectOneLineError(res, 6, what);
        assert.ok(line.includes(where), `${what}: the error names the datastore\n${describe(res)}`);
        assert.match(line, new RegExp(`refused role "${role}" \\(28P01`), describe(res));
        if (args.includes("--json")) {
          assert.match(String(res.json().schema), /^modelsync\./, describe(res));
        }
      }
      assert.deepEqual(await snapshot(repo.path("models")), before, "local data untouched");
      // The right password works, from the environment (with the role given the tables).
      for (
        const grant of [
          `GRANT USAGE ON SCHEMA "${pg.schema}" TO ${role}`,
          `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "${pg.schema}" TO ${role}`,
          `GRANT USAGE ON ALL SEQUENCES IN SCHEMA "${pg.schema}" TO ${role}`,
        ]
      ) await adminSql().unsafe(grant);
      const ok = await repo.run(["push", "--datastore", asRole], {
        env: { PGPASSWORD: "the-right-one" },
      });
      expectCode(ok, 0, "push with the right password");
      // A password the user put in the URL is used, and never printed (caps, --json, -v).
      const right = inUrl.replace(encodeURIComponent(SECRET), "the-right-one");
      for (const args of [["caps", "--json"], ["caps", "-v"], ["log", "vpc/m1", "--json"]]) {
        const res = expectCode(await repo.run([...args, "--datastore", right]), 0, args.join(" "));
        assert.ok(!`${res.stdout}${res.stderr}`.includes("the-right-one"), describe(res));
        if (args[0] === "caps") assert.ok(res.stdout.includes(where), describe(res));
      }
    } finally {
      await adminSql().unsafe(`DROP OWNED BY ${role}`);
      await adminSql().unsafe(`DROP ROLE ${role}`);
    }
  },
});

Deno.test({
  name:
    "PostgreSQL: the server goes away in the middle of a push: exit 6, local data untouched, a rerun completes",
  ...pgTestOptions(),
  async fn() {
    await using pg = await PgSandbox.create("down", { proxy: true });
    const proxy = pg.proxy!;
    const a = await pg.sb.repo("a", { MODELSYNC_HOLDER: "alice" });
    await a.noPacks(); // a blob per file: the server goes down between blob uploads
    await writeModelFiles(a, "vpc/m1", { count: 12, size: 300_000, seed: 5 });
    await a.write("models/vpc/m2/b.txt", "second model\n");
    const before = await snapshot(a.path("models"));

    // Uploads are slowed (one at a time) so the server can go away between two of them.
    const slow = slowStore(pg.sb, { putBlob: 400 });
    const deadlines = ["--call-timeout", "2s", "--lock-timeout", "3s", "--timeout", "60s"];
    const push = a.spawn(["push", "--json", "--jobs", "1", ...slow.args, ...deadlines], {
      env: slow.env,
    });
    await waitFor("three blobs stored", async () => {
      if (push.exited) throw new Error(`the push ended early\n${describe(await push.done)}`);
      return (await pg.count("blobs")) >= 3;
    }, { intervalMs: 100 });
    // The server goes away: its sessions are terminated, new connections refused.
    proxy.cut();
    await adminSql().unsafe(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE application_name = 'modelsync' AND pid <> pg_backend_pid()
         AND datname = current_database()`,
    );
    const res = await push.done;
    expectCode(res, 6, "push while the server is away");
    const errors = res.stderr.split("\n").filter((l) => l.startsWith("modelsync: error: "));
    assert.ok(errors.length >= 1, describe(res));
    for (const line of errors) {
      assert.ok(
        line.includes(`(schema ${pg.schema})`),
        `each error names the datastore\n${describe(res)}`,
      );
    }
    const rows = reportByModel(expectJson(res, "modelsync.push/1"));
    assert.equal(rows.get("vpc/m1")?.status, "failed", describe(res));
    assert.deepEqual(await snapshot(a.path("models")), before, "local data untouched");
    const heads = await adminSql().unsafe(
      `SELECT key FROM "${pg.schema}".records WHERE key LIKE 'heads/%'`,
    );
    assert.ok(
      !heads.some((r) => r.key === "heads/vpc/m1"),
      `vpc/m1 was not committed\n${describe(res)}`,
    );

    await proxy.restore();
    const rerun = expectCode(await a.run(["push", "--json"]), 0, "rerun once the server is back");
    const again = reportByModel(expectJson(rerun, "modelsync.push/1"));
    assert.equal(again.get("vpc/m1")?.status, "pushed", describe(rerun));
    assert.deepEqual(await snapshot(a.path("models")), before, "local data still untouched");
    const verify = expectJson(
      expectCode(await a.run(["verify", "--read-data", "--json"]), 0, "verify"),
      "modelsync.verify/1",
    );
    assert.deepEqual(verify.problems, []);
    const b = await pg.sb.repo("b");
    expectCode(await b.run(["pull"]), 0, "fresh pull");
    assert.deepEqual(await snapshot(b.path("models")), before, "every byte arrives");
  },
});

Deno.test({
  name: "PostgreSQL: a role that may only read pulls, and its push exits 6 writing nothing",
  ...pgTestOptions(),
  async fn() {
    const role = `ms_ro_${Deno.pid}_${Math.floor(Math.random() * 1e6)}`;
    await adminSql().unsafe(`CREATE ROLE ${role} LOGIN`);
    await using pg = await PgSandbox.create("readonly");
    try {
      const a = await pg.sb.repo("a");
      await a.write("models/vpc/m1/a.txt", "shared\n");
      expectCode(await a.run(["push"]), 0, "push by the owner");
      for (
        const grant of [
          `GRANT USAGE ON SCHEMA "${pg.schema}" TO ${role}`,
          `GRANT SELECT ON ALL TABLES IN SCHEMA "${pg.schema}" TO ${role}`,
        ]
      ) await adminSql().unsafe(grant);
      const u = new URL(PG_URL!);
      const asRole = `postgres://${role}@${u.host}${u.pathname}?schema=${pg.schema}`;
      const b = await pg.sb.repo("b");
      const pull = expectCode(await b.run(["pull", "--datastore", asRole]), 0, "read-only pull");
      assert.equal(await b.read("models/vpc/m1/a.txt"), "shared\n", describe(pull));
      await b.write("models/vpc/m1/a.txt", "changed by b\n");
      const before = await pg.count("records");
      const line = expectOneLineError(await b.run(["push", "--datastore", asRole]), 6, "push");
      assert.match(line, /may write/, line);
      assert.equal(await pg.count("records"), before, "nothing written");
      assert.equal(await b.read("models/vpc/m1/a.txt"), "changed by b\n", "local change kept");
    } finally {
      await adminSql().unsafe(`DROP OWNED BY ${role}`);
      await adminSql().unsafe(`DROP ROLE ${role}`);
    }
  },
});
