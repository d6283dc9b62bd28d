import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  generateAccountSASQueryParameters,
  type RestError,
  StorageSharedKeyCredential,
} from "@azure/storage-blob";
import { ContentChangedError, DatastoreError, NotFoundError } from "../../errors.ts";
import { runConformance } from "../../provider/conformance.ts";
import type { ProviderContext } from "../../provider/contract.ts";
import { listAllRecords } from "../../provider/keys.ts";
import { runProbe } from "../../provider/probe.ts";
import {
  AZURE_ENDPOINT,
  AZURE_TEST_ENV,
  azureTestOptions,
  freshContainer,
  testService,
} from "./_test_server.ts";
import { DEV_ACCOUNT } from "./config.ts";
import { AzureProvider, type AzureProviderOptions } from "./provider.ts";

const opts = azureTestOptions();

function ctx(extra: Partial<ProviderContext> = {}): ProviderContext {
  return { callTimeoutMs: 30_000, host: hostname(), pid: Deno.pid, baseDir: "/", ...extra };
}

let shared: Promise<string> | undefined;
let n = 0;

/** A provider on a fresh prefix of a shared container. */
async function fresh(o: AzureProviderOptions & { prefix?: string } = {}) {
  shared ??= freshContainer("provider");
  const container = await shared;
  const prefix = o.prefix ?? `t${n++}-${crypto.randomUUID().slice(0, 8)}`;
  const p = new AzureProvider({ container, prefix }, ctx(), { env: AZURE_TEST_ENV, ...o });
  await p.init();
  return { p, container, prefix };
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const readAll = async (s: ReadableStream<Uint8Array>) =>
  new Uint8Array(await new Response(s).arrayBuffer());
const statusOf = (p: Promise<unknown>) =>
  p.then(() => 200, (e: RestError) => `${e.statusCode} ${e.code}`);

Deno.test({
  name: "Azurite honours conditions: a second create 409, a stale If-Match 412, one of 8 creates",
  ...opts,
}, async () => {
  const container = testService().getContainerClient(await freshContainer("conditions"));
  const blob = container.getBlockBlobClient("probe/record");
  const first = await blob.upload("one", 3, { conditions: { ifNoneMatch: "*" } });
  assert.equal(
    await statusOf(blob.upload("two", 3, { conditions: { ifNoneMatch: "*" } })),
    "409 BlobAlreadyExists",
  );
  const second = await blob.upload("two", 3, { conditions: { ifMatch: first.etag } });
  assert.notEqual(second.etag, first.etag);
  assert.equal(
    await statusOf(blob.upload("stale", 5, { conditions: { ifMatch: first.etag } })),
    "412 ConditionNotMet",
  );
  assert.equal(
    await statusOf(blob.delete({ conditions: { ifMatch: first.etag } })),
    "412 ConditionNotMet",
  );
  const race = container.getBlockBlobClient("probe/race");
  const got = await Promise.all(
    Array.from(
      { length: 8 },
      (_, i) => statusOf(race.upload(`w${i}`, 2, { conditions: { ifNoneMatch: "*" } })),
    ),
  );
  assert.equal(got.filter((s) => s === 200).length, 1, got.join(", "));
  assert.equal(got.filter((s) => s === "409 BlobAlreadyExists").length, 7, got.join(", "));
  await container.delete();
});

Deno.test({ name: "azure provider passes the conformance kit on Azurite", ...opts }, async (t) => {
  // 7 names per page, so every listing the kit makes spans several pages.
  await runConformance(t, { name: "azure", factory: async () => (await fresh({ pageSize: 7 })).p });
});

Deno.test({ name: "azure caps --probe passes every check on Azurite", ...opts }, async () => {
  const { p } = await fresh();
  const checks = await runProbe(p);
  assert.deepEqual(checks.filter((c) => !c.ok), [], JSON.stringify(checks, null, 2));
  assert.deepEqual(await listAllRecords(p, "probe/"), [], "the probe left records behind");
  assert.deepEqual(p.capabilities(), {
    scopedSync: true,
    atomicCommit: true,
    serverTime: true,
    clockResolutionMs: 1_000,
    rangedReads: true,
    maxConcurrency: 16,
  });
});

Deno.test({ name: "azure: a missing container is NotFound naming it", ...opts }, async () => {
  const p = new AzureProvider({ container: "no-such-container-ms", prefix: "p" }, ctx(), {
    env: AZURE_TEST_ENV,
  });
  await p.open(); // sends nothing: the marker read that follows finds out
  const calls = [
    () => p.getRecord("config"),
    () => p.createRecord("config", enc("{}")),
    () => p.listRecords("heads/"),
    () => p.putBlob(sha(enc("x")), { kind: "bytes", bytes: enc("x") }),
  ];
  for (const call of calls) {
    const err = await call().catch((e) => e);
    assert.ok(err instanceof NotFoundError, String(err));
    assert.match(err.message, /container no-such-container-ms does not exist\. Create it/);
  }
});

Deno.test(
  { name: "azure: a wrong key is refused, not retried, never echoed", ...opts },
  async () => {
    const { container } = await fresh();
    const wrong = btoa("not the key of devstoreaccount1, but 64 bytes long all the same!!");
    const env = { AZURE_STORAGE_ACCOUNT: DEV_ACCOUNT.name, AZURE_STORAGE_KEY: wrong };
    // Without an endpoint, the account's default one (never reached here) is named.
    const p = new AzureProvider({ container, prefix: "p" }, ctx(), { env });
    const q = new AzureProvider({ container, prefix: "p", endpoint: AZURE_ENDPOINT! }, ctx(), {
      env,
    });
    assert.match(p.describe().location, /\(account devstoreaccount1\)$/);
    const err = await q.getRecord("config").catch((e) => e);
    assert.ok(err instanceof DatastoreError, String(err));
    assert.equal(err.retryable, false);
    assert.match(err.message, /credentials were refused \(AuthorizationFailure, HTTP 403\)/);
    assert.match(err.message, /Check AZURE_STORAGE_KEY/);
    assert.ok(!err.message.includes(wrong) && !String(err.cause).includes(wrong), err.message);
  },
);

Deno.test({ name: "azure: a SAS token works, and is never in a message", ...opts }, async () => {
  const { container } = await fresh();
  const sas = generateAccountSASQueryParameters(
    {
      expiresOn: new Date(Date.now() + 3600_000),
      permissions: AccountSASPermissions.parse("rwdlac"),
      resourceTypes: AccountSASResourceTypes.parse("sco").toString(),
      services: AccountSASServices.parse("b").toString(),
    },
    new StorageSharedKeyCredential(DEV_ACCOUNT.name, DEV_ACCOUNT.key),
  ).toString();
  const env = { AZURE_STORAGE_ACCOUNT: DEV_ACCOUNT.name, AZURE_STORAGE_SAS_TOKEN: `?${sas}` };
  const p = new AzureProvider({ container, prefix: "sas", endpoint: AZURE_ENDPOINT! }, ctx(), {
    env,
  });
  const v = await p.createRecord("heads/vpc/m1", enc("one"));
  assert.ok(v !== null);
  assert.equal(dec((await p.getRecord("heads/vpc/m1"))!.bytes), "one");
  const missing = new AzureProvider(
    { container: "no-such-c", prefix: "", endpoint: AZURE_ENDPOINT! },
    ctx(),
    {
      env,
    },
  );
  const err = await missing.getRecord("config").catch((e) => e);
  assert.ok(err instanceof NotFoundError, String(err));
  const sig = new URLSearchParams(sas).get("sig")!;
  assert.ok(!err.message.includes(sig) && !String((err.cause as Error)?.stack).includes(sig));
});

Deno.test(
  { name: "azure blobs: large files go up in parallel blocks, checked first", ...opts },
  async () => {
    const { p } = await fresh({ singlePutBytes: 1024 * 1024, blockBytes: 1024 * 1024 });
    const dir = await Deno.makeTempDir({ prefix: "modelsync-az-" });
    try {
      const big = crypto.getRandomValues(new Uint8Array(65_536));
      const bytes = new Uint8Array(5.5 * 1024 * 1024);
      for (let i = 0; i < bytes.length; i += big.length) {
        bytes.set(
          big.subarray(0, bytes.length - i),
          i,
        );
      }
      bytes[12345] = 7;
      const h = sha(bytes);
      await Deno.writeFile(`${dir}/big`, bytes);
      await p.putBlob(h, { kind: "file", path: `${dir}/big`, size: bytes.length });
      assert.deepEqual(await readAll(await p.getBlob(h)), bytes);
      const range = await readAll(
        await p.getBlob(h, { range: { offset: 2_000_000, length: 1_500_000 } }),
      );
      assert.deepEqual(range, bytes.subarray(2_000_000, 3_500_000));
      assert.deepEqual(
        await readAll(await p.getBlob(h, { range: { offset: bytes.length + 5, length: 9 } })),
        new Uint8Array(),
      );
      await p.putBlob(h, { kind: "file", path: `${dir}/big`, size: bytes.length }); // stored: fine

      // A file that does not hash to its name (it changed since it was scanned) is never committed.
      const other = sha(enc("something else"));
      await assert.rejects(
        p.putBlob(other, { kind: "file", path: `${dir}/big`, size: bytes.length }),
        ContentChangedError,
      );
      assert.deepEqual(await p.hasBlobs([h, other]), new Set([h]));
      await assert.rejects(p.getBlob(other), NotFoundError);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  { name: "azure blobs: hasBlobs of many hashes lists the area once", ...opts },
  async () => {
    const { p, container, prefix } = await fresh({ pageSize: 10 });
    const stored = Array.from({ length: 12 }, (_, i) => enc(`blob ${i}`));
    for (const b of stored) await p.putBlob(sha(b), { kind: "bytes", bytes: b });
    // A new provider, so nothing is known from the uploads.
    const fresh2 = new AzureProvider({ container, prefix }, ctx(), {
      env: AZURE_TEST_ENV,
      pageSize: 10,
    });
    const asked = [
      ...stored.map(sha),
      ...Array.from({ length: 40 }, (_, i) => sha(enc(`missing ${i}`))),
    ];
    assert.deepEqual(await fresh2.hasBlobs(asked), new Set(stored.map(sha)));
  },
);

Deno.test(
  { name: "azure records: the clock is the server's Date and Last-Modified", ...opts },
  async () => {
    const { p } = await fresh();
    await p.createRecord("leases/global", enc("x"));
    const got = await p.getRecord("leases/global");
    assert.ok(got?.storeNowMs !== undefined && got.modifiedMs !== undefined);
    assert.equal(got.storeNowMs % 1000, 0, "an HTTP date has whole seconds");
    assert.ok(Math.abs(got.storeNowMs - Date.now()) < 5_000);
    assert.ok(got.modifiedMs <= got.storeNowMs + 1_000);
  },
);
