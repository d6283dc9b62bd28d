/**
 * End-to-end: no S3 secret ever reaches the disk or a message. A user name or
 * password in an S3 endpoint — in the spec (`?endpoint=https://user:pass@…`),
 * in the s3:// URL itself, in `modelsync.yaml`'s `endpoint:` key, or in
 * `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` — is refused with one line
 * saying that credentials come from the AWS environment (exit 2), never
 * echoing it, and `init` refuses before writing `modelsync.yaml`. A failed
 * init on S3 (a bucket that does not exist) leaves no `modelsync.yaml`.
 *
 * The refusals need no server (they happen before any request); the tests
 * that talk to S3 use the local test server and are ignored without it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  describe,
  exists,
  expectCode,
  expectOneLineError,
  type RunResult,
  Sandbox,
} from "./_helpers.ts";
import { S3_ENDPOINT, S3Sandbox, s3TestOptions } from "./_s3.ts";

const USER = "AKIAEXAMPLEUSER";
const PASS = "wJalr-s3cr3t-KEY";
const REMEDY =
  /credentials come from the AWS environment \(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE\)/;

/** A one-line exit-2 refusal naming the remedy, with neither half of the secret anywhere. */
function expectRefused(res: RunResult, what: string): string {
  const line = expectOneLineError(res, 2, what);
  assert.match(line, REMEDY, describe(res));
  for (const s of [USER, PASS]) {
    assert.ok(!res.stderr.includes(s) && !res.stdout.includes(s), `${what}\n${describe(res)}`);
  }
  return line;
}

async function names(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

Deno.test("init refuses an S3 endpoint holding a user name or password before writing anything", async () => {
  await using sb = await Sandbox.create();
  const env = { AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test", AWS_REGION: "us-east-1" };
  const cases: { what: string; args: string[]; env: Record<string, string>; names: RegExp }[] = [
    {
      what: "spec ?endpoint= with user:password",
      args: ["init", "--datastore", `s3://models/team?endpoint=https://${USER}:${PASS}@minio:9000`],
      env: {},
      names: /^Invalid --datastore "s3:\/\/models\/team\?\*\*\*": its endpoint URL holds/,
    },
    {
      what: "spec ?endpoint= with a user name only",
      args: ["init", "--datastore", `s3://models/team?endpoint=http://${USER}@minio:9000`],
      env: {},
      names: /its endpoint URL holds a user name or password/,
    },
    {
      what: "user:password in the s3:// URL itself",
      args: ["init", "--datastore", `s3://${USER}:${PASS}/x@models/team`],
      env: {},
      names: /^Invalid --datastore "s3:\/\/\*\*\*": the s3:\/\/ URL holds/,
    },
    {
      what: "MODELSYNC_DATASTORE with user:password",
      args: ["init"],
      env: { MODELSYNC_DATASTORE: `s3://models?endpoint=https://${USER}:${PASS}@minio` },
      names: /its endpoint URL holds/,
    },
    {
      what: "AWS_ENDPOINT_URL with user:password",
      args: ["init", "--datastore", "s3://models/team"],
      env: { AWS_ENDPOINT_URL: `https://${USER}:${PASS}@minio:9000` },
      names: /^Invalid AWS_ENDPOINT_URL: the S3 endpoint URL holds/,
    },
    {
      what: "AWS_ENDPOINT_URL_S3 with user:password",
      args: ["init", "--datastore", "s3://models/team"],
      env: { AWS_ENDPOINT_URL_S3: `http://${USER}:${PASS}@127.0.0.1:9` },
      names: /^Invalid AWS_ENDPOINT_URL_S3: the S3 endpoint URL holds/,
    },
  ];
  for (const [i, c] of cases.entries()) {
    const dir = await sb.dir(`r${i}`);
    const res = await sb.run(c.args, { cwd: dir, env: { ...env, ...c.env } });
    const line = expectRefused(res, c.what);
    assert.match(line.slice("modelsync: error: ".length), c.names, describe(res));
    assert.deepEqual(await names(dir), [], `${c.what}: nothing written\n${describe(res)}`);
  }
});

Deno.test("a secret in modelsync.yaml's S3 endpoint key is refused by every command, never echoed", async () => {
  await using sb = await Sandbox.create();
  const dir = await sb.dir("r");
  const text =
    `datastore:\n  type: s3\n  bucket: models\n  endpoint: "https://${USER}:${PASS}@minio:9000"\n`;
  await Deno.writeTextFile(join(dir, "modelsync.yaml"), text);
  for (const args of [["init"], ["status", "--remote"], ["push"], ["caps"], ["lock", "status"]]) {
    const line = expectRefused(await sb.run(args, { cwd: dir }), args.join(" "));
    assert.match(
      line,
      /modelsync\.yaml: "endpoint": the endpoint URL holds a user name or password/,
    );
  }
  assert.equal(
    await Deno.readTextFile(join(dir, "modelsync.yaml")),
    text,
    "the user's file is kept",
  );
  assert.deepEqual(await names(dir), ["modelsync.yaml"], "init wrote nothing else");
});

Deno.test({
  name:
    "S3: endpoint credentials are refused on a working server; a failed init leaves no modelsync.yaml",
  ...s3TestOptions(),
}, async () => {
  await using s3 = await S3Sandbox.create("secrets");
  const server = new URL(S3_ENDPOINT!);
  const withCreds = `${server.protocol}//${USER}:${PASS}@${server.host}`;

  // The same server, reached with credentials in the endpoint: refused before any request.
  for (
    const [what, args, env] of [
      ["AWS_ENDPOINT_URL_S3", ["init", "--datastore", s3.spec], { AWS_ENDPOINT_URL_S3: withCreds }],
      ["spec ?endpoint=", ["init", "--datastore", `${s3.spec}?endpoint=${withCreds}`], {}],
    ] as const
  ) {
    const dir = await s3.sb.dir(`refused-${what.replace(/\W/g, "")}`);
    expectRefused(await s3.sb.run([...args], { cwd: dir, env: { ...env } }), what);
    assert.deepEqual(await names(dir), [], `${what}: nothing written`);
  }
  assert.deepEqual(await s3.store.keys(), [], "no request reached the bucket: no marker");

  // A bucket that does not exist: init fails and leaves no modelsync.yaml.
  const missing = await s3.sb.dir("missing-bucket");
  const res = await s3.sb.run(["init", "--datastore", "s3://no-such-bucket-modelsync/p"], {
    cwd: missing,
  });
  assert.notEqual(res.code, 0, describe(res));
  assert.equal(await exists(join(missing, "modelsync.yaml")), false, describe(res));

  // The honest spec works, and modelsync.yaml holds no credentials.
  const repo = await s3.sb.repo("ok");
  const yaml = await repo.read("modelsync.yaml");
  assert.ok(!yaml.includes(USER) && !yaml.includes(PASS), yaml);
  assert.deepEqual(await s3.store.keys(), ["config", "modelsync.json"], "the markers were created");
  await repo.write("models/vpc/m1/a.txt", "alpha\n");
  expectCode(await repo.run(["push"]), 0, "push");
  // A later run with credentials in the environment's endpoint is refused, nothing changes.
  const later = await repo.run(["push"], { env: { AWS_ENDPOINT_URL_S3: withCreds } });
  expectRefused(later, "push with AWS_ENDPOINT_URL_S3 holding credentials");
  assert.equal(await repo.read("modelsync.yaml"), yaml);
});
