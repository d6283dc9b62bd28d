import assert from "node:assert/strict";
import { S3ServiceException } from "@aws-sdk/client-s3";
import { DatastoreError, NotFoundError } from "../../errors.ts";
import { s3Fail } from "./client.ts";

const CTX = { where: "s3://models/team", bucket: "models", what: "list manifests" };

function sdkError(name: string, status: number, message = "x"): S3ServiceException {
  return new S3ServiceException({
    name,
    $fault: status >= 500 ? "server" : "client",
    $metadata: { httpStatusCode: status },
    message,
  });
}

Deno.test("s3Fail: NoSuchBucket is not-found (exit 3) naming the bucket and remedy", () => {
  const err = s3Fail(sdkError("NoSuchBucket", 404), CTX);
  assert.ok(err instanceof NotFoundError);
  assert.equal(err.exitCode, 3);
  assert.match(err.message, /bucket models does not exist\. Create it, or fix the datastore spec/);
});

Deno.test("s3Fail: auth errors are exit 6, not retryable, and echo no key", () => {
  const key = "AKIAIOSFODNN7EXAMPLE";
  for (
    const name of ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken"]
  ) {
    const err = s3Fail(sdkError(name, 403, `The AWS Access Key Id ${key} does not exist`), CTX);
    assert.ok(err instanceof DatastoreError, name);
    assert.equal(err.exitCode, 6);
    assert.equal(err.retryable, false);
    assert.ok(!err.message.includes(key), err.message);
    assert.match(err.message, /s3:\/\/models\/team.*AWS_ACCESS_KEY_ID.*AWS_PROFILE/);
    assert.ok(!err.message.includes("\n"));
  }
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
    const err = s3Fail(e, CTX);
    assert.ok(err instanceof DatastoreError && err.retryable, String(e));
    assert.equal(err.exitCode, 6);
  }
  const other = s3Fail(sdkError("InvalidArgument", 400), CTX);
  assert.ok(other instanceof DatastoreError && !other.retryable);
  const abort = new DOMException("aborted", "AbortError");
  assert.equal(s3Fail(abort, CTX), abort, "aborts pass through to the guard");
});
