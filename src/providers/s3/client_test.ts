import assert from "node:assert/strict";
import { S3ServiceException } from "@aws-sdk/client-s3";
import { DatastoreError, NotFoundError } from "../../errors.ts";
import { isLostRace, isNoSuchKey, s3Fail } from "./client.ts";

const AT = { where: "s3://models/team", bucket: "models" };
const WHAT = "read record heads/vpc/m1";

function sdkError(name: string, status: number, message = "x"): S3ServiceException {
  return new S3ServiceException({
    name,
    $fault: status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: status },
    message,
  });
}

Deno.test("s3Fail: NoSuchBucket is not-found (exit 3) naming the bucket and remedy", () => {
  const err = s3Fail(sdkError("NoSuchBucket", 404), AT, WHAT);
  assert.ok(err instanceof NotFoundError);
  assert.equal(err.exitCode, 3);
  assert.match(
    err.message,
    /^Cannot read record heads\/vpc\/m1 on the s3 datastore s3:\/\/models\/team: bucket models does not exist\. Create it, or fix the datastore spec\.$/,
  );
});

Deno.test("s3Fail: auth errors are exit 6, not retryable, and echo no key", () => {
  const key = "AKIAIOSFODNN7EXAMPLE";
  for (
    const name of ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken"]
  ) {
    const err = s3Fail(
      sdkError(name, 403, `The AWS Access Key Id ${key} does not exist`),
      AT,
      WHAT,
    );
    assert.ok(err instanceof DatastoreError, name);
    assert.equal(err.exitCode, 6);
    assert.equal(err.retryable, false);
    assert.ok(!err.message.includes(key), err.message);
    assert.match(err.message, /s3:\/\/models\/team.*AWS_ACCESS_KEY_ID.*AWS_PROFILE/);
    assert.ok(!err.message.includes("\n"));
  }
  const none = s3Fail(
    Object.assign(new Error("Could not load credentials"), {
      name: "CredentialsProviderError",
    }),
    AT,
    WHAT,
  );
  assert.ok(none instanceof DatastoreError && !none.retryable);
  assert.match(none.message, /no AWS credentials found/);
});

Deno.test("s3Fail: 5xx, SlowDown, 429 and connection errors are retryable", () => {
  const transient: unknown[] = [
    sdkError("InternalError", 500),
    sdkError("ServiceUnavailable", 503),
    sdkError("SlowDown", 503),
    sdkError("TooManyRequests", 429),
    Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }),
    Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }),
    Object.assign(new Error("timed out"), { name: "TimeoutError" }),
  ];
  for (const e of transient) {
    const err = s3Fail(e, AT, WHAT);
    assert.ok(err instanceof DatastoreError && err.retryable, String(e));
    assert.equal(err.exitCode, 6);
    assert.match(err.message, /\(transient\)/);
  }
  const refused = s3Fail(transient[4], AT, WHAT) as DatastoreError;
  assert.match(refused.message, /: ECONNREFUSED \(transient\)/);
  const other = s3Fail(sdkError("InvalidArgument", 400), AT, WHAT);
  assert.ok(other instanceof DatastoreError && !other.retryable);
  assert.match(other.message, /: InvalidArgument, HTTP 400\.$/);
  const abort = new DOMException("aborted", "AbortError");
  assert.equal(s3Fail(abort, AT, WHAT), abort, "aborts pass through to the guard");
});

Deno.test("a lost race is 412 or 409 ConditionalRequestConflict; a missing bucket is no missing key", () => {
  assert.ok(isLostRace(sdkError("PreconditionFailed", 412)));
  assert.ok(isLostRace(sdkError("ConditionalRequestConflict", 409)));
  assert.ok(!isLostRace(sdkError("BucketAlreadyExists", 409)));
  assert.ok(!isLostRace(sdkError("NoSuchKey", 404)));
  assert.ok(isNoSuchKey(sdkError("NoSuchKey", 404)));
  assert.ok(isNoSuchKey(sdkError("NotFound", 404)));
  assert.ok(!isNoSuchKey(sdkError("NoSuchBucket", 404)));
});
