/**
 * The local S3 test server (moto), shared by the S3 provider's tests and the
 * end-to-end tests. The server is started with
 * `eval "$(scripts/services.sh start)"`, which exports
 * `MODELSYNC_TEST_S3_ENDPOINT`.
 *
 * When the variable is absent, tests that need the server are ignored with
 * one message saying how to start it, unless `MODELSYNC_TEST_REQUIRE_SERVICES=1`
 * (CI), where they fail instead.
 *
 * @example
 * ```ts ignore
 * import { freshBucket, S3_ENDPOINT, s3TestOptions } from "./_test_server.ts";
 * Deno.test({ name: "round trip", ...s3TestOptions() }, async () => {
 *   const bucket = await freshBucket("rt");
 *   console.log(`s3://${bucket}/p?endpoint=${S3_ENDPOINT}`);
 * });
 * ```
 * @module
 */
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";

const ENDPOINT_VAR = "MODELSYNC_TEST_S3_ENDPOINT";
const START_HINT = 'eval "$(scripts/services.sh start)"';

/** The test server's endpoint, e.g. `http://127.0.0.1:40123`, or null when not set. */
export const S3_ENDPOINT: string | null = Deno.env.get(ENDPOINT_VAR)?.trim() || null;

/** Environment for a subprocess (or the SDK) talking to the test server. */
export const S3_TEST_ENV: Record<string, string> = {
  AWS_ACCESS_KEY_ID: "test",
  AWS_SECRET_ACCESS_KEY: "test",
  AWS_REGION: "us-east-1",
  ...(S3_ENDPOINT === null ? {} : { AWS_ENDPOINT_URL_S3: S3_ENDPOINT }),
};

let hinted = false;

/**
 * Options for a `Deno.test` that needs the server: `{ ignore: true }` when it
 * is not running (one hint printed per process), `{ ignore: false }` when it
 * is. Throws when `MODELSYNC_TEST_REQUIRE_SERVICES=1` and it is not running.
 */
export function s3TestOptions(): { ignore: boolean } {
  if (S3_ENDPOINT !== null) return { ignore: false };
  if (Deno.env.get("MODELSYNC_TEST_REQUIRE_SERVICES") === "1") {
    throw new Error(
      `${ENDPOINT_VAR} is not set but MODELSYNC_TEST_REQUIRE_SERVICES=1: ` +
        `start the local S3 server with ${START_HINT}.`,
    );
  }
  if (!hinted) {
    hinted = true;
    console.error(
      `S3 tests ignored: ${ENDPOINT_VAR} is not set; start the server with ${START_HINT}`,
    );
  }
  return { ignore: true };
}

let client: S3Client | undefined;

/** An SDK client for the test server (path style, test credentials). */
export function testClient(): S3Client {
  if (S3_ENDPOINT === null) throw new Error(`${ENDPOINT_VAR} is not set: run ${START_HINT}`);
  client ??= new S3Client({
    endpoint: S3_ENDPOINT,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  });
  return client;
}

let counter = 0;

/**
 * Creates a uniquely named bucket on the test server and returns its name.
 * `prefixHint` (lowercased, non-alphanumerics dropped) makes it recognisable.
 */
export async function freshBucket(prefixHint: string): Promise<string> {
  const hint = prefixHint.toLowerCase().replace(/[^a-z0-9-]/g, "").slice(0, 20) || "t";
  const rand = crypto.getRandomValues(new Uint8Array(5));
  const suffix = Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("");
  const name = `ms-${hint}-${Deno.pid}-${counter++}-${suffix}`.replace(/-+/g, "-").slice(0, 63);
  await testClient().send(new CreateBucketCommand({ Bucket: name }));
  return name;
}
