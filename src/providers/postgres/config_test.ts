import assert from "node:assert/strict";
import { join } from "node:path";
import { UsageError } from "../../errors.ts";
import {
  describeLocation,
  parsePostgresSpec,
  passwordFromFile,
  postgresConfigSchema,
  resolvePostgresConfig,
} from "./config.ts";

const parse = (spec: string) => postgresConfigSchema.parse(parsePostgresSpec(spec));

Deno.test("postgres spec: URL, schema as its own key, both schemes", () => {
  assert.deepEqual(parse("postgres://app@db:6432/models?schema=team&sslmode=require"), {
    url: "postgres://app@db:6432/models?sslmode=require",
    schema: "team",
  });
  assert.deepEqual(parse("postgresql://db/models"), {
    url: "postgresql://db/models",
    schema: "modelsync",
  });
});

Deno.test("postgres spec: bad URLs are one-line UsageErrors without the password", () => {
  for (
    const [spec, why] of [
      ["postgres://u:Sekr1t@db/m?schema=Bad-Name", /schema/],
      ["postgres://u:Sekr1t@db/m?sslmode=sometimes", /sslmode must be one of/],
      ["postgres://u:Sekr1t@db/m?password=x", /"password" as a query key/],
      ["postgres://u:Sekr1t@db/m?color=red", /unknown query key "color"/],
      ["postgres://u:Sekr1t@db/m?schema=a&schema=b", /"schema" twice/],
      ["postgres://u:Sekr1t@db/m#frag", /#fragment/],
      ["postgres://u:Sekr1t@a,b/m", /several hosts/],
    ] as const
  ) {
    let err: unknown;
    try {
      parse(spec);
    } catch (e) {
      err = e;
    }
    const message = err instanceof Error ? err.message : String(err);
    assert.ok(err !== undefined, `${spec} was accepted`);
    assert.match(message, why, spec);
    assert.ok(!message.includes("Sekr1t"), message);
    if (err instanceof UsageError) assert.ok(!message.includes("\n"), message);
  }
  // The mapping form is checked by the schema.
  const bad = postgresConfigSchema.safeParse({ url: "postgres://db/m", schema: "x", user: "u" });
  assert.equal(bad.success, false);
});

Deno.test("postgres config: libpq's environment fills what the URL leaves out", () => {
  const base = { schema: "modelsync" };
  const r = resolvePostgresConfig({ ...base, url: "postgres:///" }, {
    PGHOST: "db.internal",
    PGPORT: "6543",
    PGUSER: "svc",
    PGDATABASE: "models",
    PGPASSWORD: "from-env",
    PGSSLMODE: "require",
    PGAPPNAME: "ci",
    PGCONNECT_TIMEOUT: "7",
  });
  assert.deepEqual(
    { ...r, password: r.password() },
    {
      host: "db.internal",
      port: 6543,
      database: "models",
      user: "svc",
      passwordFrom: "PGPASSWORD",
      password: "from-env",
      sslmode: "require",
      applicationName: "ci",
      connectTimeoutS: 7,
      schema: "modelsync",
    },
  );
  // The URL wins over the environment; the database defaults to the user.
  const u = resolvePostgresConfig({ ...base, url: "postgres://me:p%40ss@h:1/?sslmode=disable" }, {
    PGPASSWORD: "env",
    PGSSLMODE: "require",
  });
  assert.deepEqual([u.user, u.database, u.password(), u.passwordFrom, u.sslmode], [
    "me",
    "me",
    "p@ss",
    "url",
    "disable",
  ]);
  assert.equal(describeLocation(u), "postgres://me@h:1/me (schema modelsync)");
  const sock = resolvePostgresConfig({ ...base, url: "postgres:///m" }, {
    PGHOST: "/run/postgresql",
    PGUSER: "x",
  });
  assert.equal(sock.socketDir, "/run/postgresql");
  assert.equal(describeLocation(sock), "postgres://x@/run/postgresql:5432/m (schema modelsync)");
});

Deno.test("postgres config: the password file, as libpq reads it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "pgpass");
    await Deno.writeTextFile(
      file,
      "# comment\nother:5432:*:*:no\ndb:5432:models:svc:first\n*:*:*:svc:wild\\:card\n",
    );
    await Deno.chmod(file, 0o600);
    const want = { host: "db", port: 5432, database: "models", user: "svc" };
    assert.equal(passwordFromFile(file, want), "first");
    assert.equal(passwordFromFile(file, { ...want, database: "x" }), "wild:card");
    assert.equal(passwordFromFile(file, { ...want, user: "nobody" }), undefined);
    const r = resolvePostgresConfig({ url: "postgres://svc@db/models", schema: "s" }, {
      PGPASSFILE: file,
    });
    assert.equal(r.passwordFrom, "password file");
    assert.equal(r.password(), "first");
    await Deno.chmod(file, 0o644); // others may read it: ignored, as libpq does
    assert.equal(passwordFromFile(file, want), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
