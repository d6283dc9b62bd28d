import assert from "node:assert/strict";
import { UsageError } from "../../errors.ts";
import { parseDatastoreSpec } from "../../repo/datastore_spec.ts";
import { createProvider } from "../mod.ts";
import {
  describeLocation,
  endpointHasCredentials,
  parseS3Spec,
  resolveS3Config,
  s3ConfigSchema,
} from "./config.ts";
import { S3Provider } from "./provider.ts";

const CTX = { callTimeoutMs: 5_000, host: "h", pid: 1, baseDir: "/" };
const SECRET = "AKIASECRETVALUE123";

/** The one-line exit-2 error of creating a provider from a spec string or a mapping. */
async function usage(config: string | Record<string, unknown>): Promise<string> {
  const c = typeof config === "string"
    ? parseDatastoreSpec(config, "/")
    : { type: "s3", ...config };
  const err = await createProvider(c, CTX).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof UsageError, `expected UsageError, got ${err}`);
  assert.equal(err.exitCode, 2);
  assert.ok(!err.message.includes("\n"), err.message);
  assert.ok(!err.message.includes(SECRET), err.message);
  return err.message;
}

Deno.test("s3 config: credentials keys are refused with the remedy, never echoed", async () => {
  for (const key of ["accessKeyId", "secretAccessKey", "sessionToken", "aws_secret_access_key"]) {
    const msg = await usage({ bucket: "models", [key]: SECRET });
    assert.match(msg, new RegExp(`"${key}": credentials are never read from modelsync\\.yaml`));
    assert.match(msg, /AWS_ACCESS_KEY_ID.*AWS_PROFILE/);
    const viaSpec = await usage(`s3://models/p?${key}=${SECRET}`);
    assert.match(
      viaSpec,
      /^Invalid datastore "s3:\/\/models\/p\?\*\*\*" in modelsync\.yaml: ".*": credentials are never read/,
    );
  }
});

Deno.test("s3 config: a user name or password in an endpoint is refused, from anywhere", async () => {
  const creds = /holds a user name or password, but credentials come from the AWS environment/;
  const url = `http://user:${SECRET}@127.0.0.1:9000`;
  assert.match(await usage(`s3://models/p?endpoint=${encodeURIComponent(url)}`), creds);
  assert.match(await usage(`s3://models/p?endpoint=${url}`), creds);
  assert.match(await usage({ bucket: "models", endpoint: url }), creds);
  assert.match(await usage({ bucket: "models", endpoint: `http://${SECRET}@h:1` }), creds);
  assert.match(await usage(`s3://user:${SECRET}@models/p`), creds);
  for (const name of ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]) {
    const err = (() => {
      try {
        new S3Provider({ bucket: "models", prefix: "" }, CTX, { env: { [name]: url } });
      } catch (e) {
        return e;
      }
    })();
    assert.ok(err instanceof UsageError && err.exitCode === 2, String(err));
    assert.match(err.message, new RegExp(`^Invalid ${name}: `));
    assert.match(err.message, creds);
    assert.ok(!err.message.includes(SECRET));
  }
});

Deno.test("s3 config: strict schema, bucket required and checked", async () => {
  assert.match(await usage({ bucket: "models", colour: "red" }), /unknown key "colour"; remove it/);
  assert.match(await usage({}), /"bucket" is required/);
  assert.match(await usage({ bucket: "Bad_Bucket" }), /"bucket": not a valid S3 bucket name/);
  assert.match(await usage({ bucket: "models", endpoint: "ftp://x" }), /"endpoint": not an http/);
  assert.match(await usage("s3://models/p?colour=red"), /unknown key "colour"/);
});

Deno.test("s3 spec: bucket, prefix and query keys; bad specs name the problem", async () => {
  assert.deepEqual(parseS3Spec("s3://models"), { bucket: "models", prefix: "" });
  assert.deepEqual(
    s3ConfigSchema.parse(parseS3Spec("S3://models//team/a/?region=eu-west-1&forcePathStyle=false")),
    { bucket: "models", prefix: "team/a", region: "eu-west-1", forcePathStyle: false },
  );
  assert.match(await usage("s3://"), /: it names no bucket\. Use s3:\/\/bucket\/prefix/);
  assert.match(await usage("s3:///p"), /it names no bucket/);
  assert.match(await usage("s3://models/p?region=a&region=b"), /it sets "region" twice/);
  assert.match(await usage("s3://models/p?bucket=other"), /it sets "bucket" twice/);
  assert.throws(() => parseS3Spec("s3:models"), /it is not an s3:\/\/ URL/);
});

Deno.test("s3 config: endpoint from config, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL", () => {
  const c = s3ConfigSchema.parse({ bucket: "models", prefix: "/team/a/" });
  assert.deepEqual(resolveS3Config(c, {}), {
    bucket: "models",
    prefix: "team/a",
    forcePathStyle: false,
  });
  assert.equal(resolveS3Config(c, { AWS_REGION: "eu-west-1" }).region, "eu-west-1");
  const both = { AWS_ENDPOINT_URL_S3: "http://s3.local:9000", AWS_ENDPOINT_URL: "http://x:1" };
  assert.equal(resolveS3Config(c, both).endpoint, "http://s3.local:9000");
  assert.equal(resolveS3Config(c, { AWS_ENDPOINT_URL: "http://x:1" }).endpoint, "http://x:1");
  const r = resolveS3Config(c, both);
  assert.equal(r.forcePathStyle, true, "path style by default with an endpoint");
  assert.equal(r.region, "us-east-1", "a custom endpoint gets a default region");
  const own = s3ConfigSchema.parse({
    bucket: "models",
    endpoint: "http://minio:9000",
    forcePathStyle: "false",
  });
  const r2 = resolveS3Config(own, both);
  assert.equal(r2.endpoint, "http://minio:9000", "the config wins over the environment");
  assert.equal(r2.forcePathStyle, false);
});

Deno.test("s3 config: describe() names bucket, prefix and endpoint, nothing more", async () => {
  const spec = parseDatastoreSpec(
    "s3://models/team?endpoint=http://127.0.0.1:9000/?token=pw&region=eu-west-1",
    "/",
  );
  const where = "s3://models/team (endpoint http://127.0.0.1:9000)";
  const p = await createProvider(spec, CTX);
  assert.deepEqual(p.describe(), { type: "s3", location: where });
  assert.equal(describeLocation({ bucket: "b", prefix: "" }), "s3://b");
  await p.close();
});

Deno.test("s3 config: an endpoint with a user name or password is refused wherever it comes from", async () => {
  assert.equal(endpointHasCredentials("https://key:secret@minio:9000"), true);
  assert.equal(endpointHasCredentials("https://key@minio"), true);
  assert.equal(
    endpointHasCredentials("http://k:se/cr@et@minio"),
    true,
    "not a URL, still user info",
  );
  assert.equal(endpointHasCredentials("https://minio:9000/path@x"), false);
  assert.equal(endpointHasCredentials("http://127.0.0.1:9000"), false);
  const msg = await usage({ bucket: "models", endpoint: "https://key:s3cr3t@minio:9000" });
  assert.match(
    msg,
    /"endpoint": the endpoint URL holds a user name or password, but credentials come from the AWS environment/,
  );
  assert.ok(!msg.includes("s3cr3t") && !msg.includes("key:"), msg);
  for (const name of ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]) {
    assert.throws(
      () =>
        resolveS3Config({ bucket: "models", prefix: "" }, { [name]: "http://key:s3cr3t@minio" }),
      (err: unknown) =>
        err instanceof UsageError && err.message.startsWith(`Invalid ${name}: `) &&
        !err.message.includes("s3cr3t"),
    );
  }
  // An endpoint that is not used (the config names one) is not this run's business.
  const r = resolveS3Config(
    { bucket: "models", prefix: "", endpoint: "http://minio" },
    { AWS_ENDPOINT_URL: "http://key:s3cr3t@other" },
  );
  assert.equal(r.endpoint, "http://minio");
  for (const spec of ["s3://models/p?endpoint=https://k:s3cr3t@minio", "s3://k:s3cr3t@models/p"]) {
    assert.throws(
      () => parseS3Spec(spec),
      (err: unknown) =>
        err instanceof UsageError &&
        /credentials come from the AWS environment/.test(err.message) &&
        !err.message.includes("s3cr3t"),
    );
  }
  // "@" and ":" in the prefix are fine.
  assert.equal(parseS3Spec("s3://models/team@x/a:b").prefix, "/team@x/a:b");
});
