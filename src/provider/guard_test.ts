import assert from "node:assert/strict";
import { DatastoreError, NotFoundError } from "../errors.ts";
import type { CallOptions, Provider } from "./contract.ts";
import { guardProvider } from "./guard.ts";
import { readCapabilities } from "./capabilities.ts";

/** A provider whose calls are scripted per test; unscripted calls throw. */
function fake(overrides: Partial<Provider>): Provider {
  const no = () => {
    throw new Error("not scripted");
  };
  return {
    type: "fake",
    hasBlobs: no,
    putBlob: no,
    getBlob: no,
    listBlobs: no,
    deleteBlob: no,
    getRecord: no,
    createRecord: no,
    replaceRecord: no,
    deleteRecord: no,
    listRecords: no,
    describe: () => ({ type: "fake", location: "mem://x" }),
    open: no,
    init: no,
    close: () => Promise.resolve(),
    ...overrides,
  } as Provider;
}

const fast = { callTimeoutMs: 100, backoff: { initialMs: 1, maxMs: 5 } };

Deno.test("guard: a call that never answers fails at its deadline with a retryable DatastoreError", async () => {
  let calls = 0;
  const hung = fake({
    // Ignores its signal on purpose, like a hung network mount.
    listRecords: () => {
      calls++;
      return new Promise(() => {});
    },
  });
  const p = guardProvider(hung, { ...fast, attempts: 2 });
  const started = Date.now();
  await assert.rejects(p.listRecords("heads/"), (err) => {
    assert.ok(err instanceof DatastoreError);
    assert.equal(err.exitCode, 6);
    assert.match(err.message, /did not answer listRecords within 100ms.*--call-timeout/);
    assert.ok(!err.message.includes("\n"));
    return true;
  });
  assert.equal(calls, 2, "a timed-out idempotent read is retried once more");
  assert.ok(Date.now() - started >= 200);
});

Deno.test("guard: transient faults of idempotent calls are retried with backoff", async () => {
  let calls = 0;
  const flaky = fake({
    getRecord: () => {
      calls++;
      if (calls < 3) return Promise.reject(new DatastoreError("reset", { retryable: true }));
      return Promise.resolve(null);
    },
  });
  assert.equal(await guardProvider(flaky, fast).getRecord("heads/a/b"), null);
  assert.equal(calls, 3);
});

Deno.test("guard: permanent errors and compare-and-swap writes are not retried", async () => {
  let reads = 0;
  let commits = 0;
  const p = guardProvider(
    fake({
      getBlob: () => {
        reads++;
        return Promise.reject(new NotFoundError("no blob"));
      },
      replaceRecord: () => {
        commits++;
        return Promise.reject(new DatastoreError("reset", { retryable: true }));
      },
    }),
    fast,
  );
  await assert.rejects(p.getBlob("00"), NotFoundError);
  assert.equal(reads, 1);
  await assert.rejects(p.replaceRecord("heads/a/b", new Uint8Array(1), "v1"), DatastoreError);
  assert.equal(commits, 1);
});

Deno.test("guard: the caller's abort wins and is not retried", async () => {
  let calls = 0;
  const p = guardProvider(
    fake({
      hasBlobs: (_h: string[], o?: CallOptions) => {
        calls++;
        return new Promise((_, reject) =>
          o?.signal?.addEventListener("abort", () => reject(o.signal!.reason))
        );
      },
    }),
    { callTimeoutMs: 10_000 },
  );
  const ctl = new AbortController();
  const reason = new Error("interrupted");
  setTimeout(() => ctl.abort(reason), 20);
  await assert.rejects(p.hasBlobs(["00"], { signal: ctl.signal }), (err) => err === reason);
  assert.equal(calls, 1);
});

Deno.test("guard: a provider without capabilities() stays without, so it gets the global path", () => {
  const reading = readCapabilities(guardProvider(fake({}), fast), []);
  assert.equal(reading.caps.scopedSync, false);
  assert.equal(reading.warnings.length, 1);
  const declared = guardProvider(
    fake({
      capabilities: () => ({
        scopedSync: true,
        atomicCommit: true,
        serverTime: false,
        rangedReads: false,
        maxConcurrency: 4,
      }),
    }),
    fast,
  );
  assert.equal(readCapabilities(declared, []).caps.scopedSync, true);
});

Deno.test("guard: a record created after the create's deadline fired is deleted again", async () => {
  const deleted: string[] = [];
  const slow = fake({
    createRecord: () => new Promise((resolve) => setTimeout(() => resolve("v7"), 150)),
    deleteRecord: (key: string, version: string) => {
      deleted.push(`${key}@${version}`);
      return Promise.resolve(true);
    },
  });
  await assert.rejects(
    guardProvider(slow, fast).createRecord("locks/models/a/b", new Uint8Array(1)),
    DatastoreError,
  );
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(
    deleted,
    ["locks/models/a/b@v7"],
    "what the caller was told (failed) stays true",
  );
});

Deno.test("guard: a blob body that stalls after its first bytes fails at the deadline, and is cancelled", async () => {
  let cancelled = false;
  const p = guardProvider(
    fake({
      getBlob: () =>
        Promise.resolve(
          new ReadableStream<Uint8Array>({
            start(c) {
              c.enqueue(new Uint8Array([1, 2, 3]));
            },
            cancel() {
              cancelled = true;
            },
          }),
        ),
    }),
    fast,
  );
  const body = await p.getBlob("ab".repeat(32));
  const reader = body.getReader();
  assert.deepEqual((await reader.read()).value, new Uint8Array([1, 2, 3]));
  await assert.rejects(reader.read(), (e) => {
    assert.ok(e instanceof DatastoreError && e.retryable, String(e));
    assert.match(e.message, /did not answer the rest of blob abababababab/);
    return true;
  });
  assert.ok(cancelled, "the stalled body was cancelled");
});

Deno.test("guard: a blob body that keeps flowing passes through unchanged", async () => {
  const chunks = [new Uint8Array([1]), new Uint8Array([2, 3])];
  const p = guardProvider(
    fake({ getBlob: () => Promise.resolve(ReadableStream.from(chunks)) }),
    fast,
  );
  const got = await new Response(await p.getBlob("cd".repeat(32))).bytes();
  assert.deepEqual(got, new Uint8Array([1, 2, 3]));
});

Deno.test("guard: a caller's abort reaches a call that ignores its signal, and a settled call leaves no listener", async () => {
  const hung = guardProvider(
    fake({ hasBlobs: () => new Promise<Set<string>>(() => {}) }),
    { callTimeoutMs: 10_000 },
  );
  const ctl = new AbortController();
  const reason = new Error("interrupted");
  setTimeout(() => ctl.abort(reason), 10);
  await assert.rejects(hung.hasBlobs(["00"], { signal: ctl.signal }), (err) => err === reason);

  // A call that answers: aborting the caller afterwards reaches nothing of it.
  let seen: AbortSignal | undefined;
  const quick = guardProvider(
    fake({
      hasBlobs: (_h: string[], o?: CallOptions) => {
        seen = o?.signal;
        return Promise.resolve(new Set(["00"]));
      },
    }),
    fast,
  );
  const caller = new AbortController();
  assert.deepEqual(await quick.hasBlobs(["00"], { signal: caller.signal }), new Set(["00"]));
  caller.abort(new Error("later"));
  assert.equal(seen?.aborted, false);
});

Deno.test("guard: an inner call that throws synchronously rejects with its error", async () => {
  const boom = new Error("boom");
  const p = guardProvider(
    fake({
      putBlob: () => {
        throw boom;
      },
    }),
    fast,
  );
  await assert.rejects(
    p.putBlob("00", { kind: "bytes", bytes: new Uint8Array() }),
    (err) => err === boom,
  );
});
