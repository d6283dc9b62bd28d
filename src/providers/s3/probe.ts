/**
 * Live checks of the S3 provider for `modelsync caps --probe`. They run under
 * a fresh random prefix `PREFIX/.probe/PID-RANDOM/` with the same client and
 * store code the provider uses, and delete what they wrote afterwards.
 *
 * @module
 */
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { ConflictError } from "../../errors.ts";
import { makeManifest } from "../../model/manifest.ts";
import type { ProbeCheck } from "../../provider/contract.ts";
import { type ProbeStep, runProbeChecks } from "../../provider/probe_checks.ts";
import { type BlobArea, listPages } from "./blobs.ts";
import { isNoSuchKey, isPreconditionFailed, serverDateOf } from "./client.ts";
import { S3ManifestStore } from "./manifests.ts";

/** Local clock vs server clock beyond this is reported as a warning in the detail. */
export const CLOCK_SKEW_NOTE_MS = 30_000;
const RACERS = 8;

/** Who probes, and the signal to honour. */
export interface ProbeOptions {
  host: string;
  pid: number;
  signal?: AbortSignal;
}

/** Runs every check under `area` (a fresh prefix), then deletes everything under it. */
export async function runProbe(area: BlobArea, opts: ProbeOptions): Promise<ProbeCheck[]> {
  opts.signal?.throwIfAborted();
  const checks: ProbeStep[] = [
    // No capability: a store that ignores conditional writes cannot be written
    // safely at all, whatever it declares, so this fails the probe outright.
    [{ name: "conditional writes" }, () => honoured(area, opts)],
    [{ name: "concurrent create-if-absent", capability: "atomicCommit" }, () => race(area, opts)],
    [{ name: "compare-and-swap", capability: "atomicCommit" }, () => cas(area, opts)],
    [{ name: "conditional delete", capability: "scopedSync" }, () => condDelete(area, opts)],
    [{ name: "list-after-write" }, () => listAfterWrite(area, opts)],
    [{ name: "server clock", capability: "serverTime" }, () => clock(area, opts)],
  ];
  return await runProbeChecks(checks, { signal: opts.signal, cleanUp: () => cleanUp(area) });
}

function put(area: BlobArea, rel: string, body: string, cond: object, signal?: AbortSignal) {
  return area.s3.client.send(
    new PutObjectCommand({
      Bucket: area.bucket,
      Key: area.key(rel),
      Body: new TextEncoder().encode(body),
      ...cond,
    }),
    { abortSignal: signal },
  );
}

async function honoured(area: BlobArea, opts: ProbeOptions): Promise<string> {
  await put(area, "cond", "first", { IfNoneMatch: "*" }, opts.signal);
  try {
    await put(area, "cond", "second", { IfNoneMatch: "*" }, opts.signal);
  } catch (err) {
    if (isPreconditionFailed(err)) return "a second create with If-None-Match: * was refused (412)";
    throw err;
  }
  throw new Error(
    "a second create with If-None-Match: * was accepted: the endpoint ignores conditional " +
      "writes, so modelsync refuses locks and commits on it (use AWS S3, MinIO or Cloudflare R2)",
  );
}

async function race(area: BlobArea, opts: ProbeOptions): Promise<string> {
  const results = await Promise.allSettled(
    Array.from(
      { length: RACERS },
      (_, i) => put(area, "race", `racer ${i}`, { IfNoneMatch: "*" }, opts.signal),
    ),
  );
  const won = results.filter((r) => r.status === "fulfilled").length;
  const refused = results.filter((r) => r.status === "rejected" && isPreconditionFailed(r.reason))
    .length;
  const other = results.find((r) => r.status === "rejected" && !isPreconditionFailed(r.reason));
  const detail = `${RACERS} concurrent PUTs with If-None-Match: * : ${won} won, ${refused} refused`;
  if (other !== undefined) {
    throw new Error(`${detail}, one failed: ${(other as PromiseRejectedResult).reason?.name}`);
  }
  if (won !== 1 || refused !== RACERS - 1) {
    throw new Error(`${detail}; expected exactly 1 winner (the endpoint ignores If-None-Match)`);
  }
  return detail;
}

async function cas(area: BlobArea, opts: ProbeOptions): Promise<string> {
  const store = new S3ManifestStore(area);
  const model = { type: "probe", id: "p1" };
  const by = { holder: "probe", host: opts.host, pid: opts.pid };
  await store.commit(model, 0, makeManifest(model, 1, [], by), opts.signal);
  const first = await store.get(model, opts.signal);
  await store.commit(model, 1, makeManifest(model, 2, [], by), opts.signal);
  // A raw PUT with the ETag of generation 1 must be refused.
  try {
    await put(
      area,
      "manifests/probe/p1.json",
      "{}",
      { IfMatch: `"${first?.version}"` },
      opts.signal,
    );
    throw new Error("a PUT with a stale If-Match was accepted (no compare-and-swap)");
  } catch (err) {
    if (!isPreconditionFailed(err)) throw err;
  }
  try {
    await new S3ManifestStore(area).commit(model, 1, makeManifest(model, 2, [], by), opts.signal);
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
    const cur = await store.get(model, opts.signal);
    if (cur?.manifest.generation !== 2) {
      throw new Error(
        `after a refused commit the model reads generation ${cur?.manifest.generation}`,
      );
    }
    return "a PUT and a commit on a stale ETag were refused; the current generation was kept";
  }
  throw new Error("a commit on a stale generation was accepted (no compare-and-swap)");
}

async function condDelete(area: BlobArea, opts: ProbeOptions): Promise<string> {
  const a = await put(area, "del", "one", {}, opts.signal);
  const b = await put(area, "del", "two", {}, opts.signal);
  const del = (etag: string | undefined) =>
    area.s3.client.send(
      new DeleteObjectCommand({ Bucket: area.bucket, Key: area.key("del"), IfMatch: etag }),
      { abortSignal: opts.signal },
    );
  try {
    await del(a.ETag);
    throw new Error("a DELETE with a stale If-Match was accepted");
  } catch (err) {
    if (!isPreconditionFailed(err)) throw err;
  }
  if (!(await exists(area, "del", opts.signal))) {
    throw new Error("a DELETE with a stale If-Match removed the object");
  }
  await del(b.ETag);
  if (await exists(area, "del", opts.signal)) {
    throw new Error("the object survived a DELETE with its current If-Match");
  }
  return "a DELETE with a stale If-Match was refused; with the current ETag it succeeded";
}

async function exists(area: BlobArea, rel: string, signal?: AbortSignal): Promise<boolean> {
  try {
    await area.s3.client.send(new HeadObjectCommand({ Bucket: area.bucket, Key: area.key(rel) }), {
      abortSignal: signal,
    });
    return true;
  } catch (err) {
    if (isNoSuchKey(err)) return false;
    throw err;
  }
}

async function listed(area: BlobArea, rel: string, signal?: AbortSignal): Promise<boolean> {
  const out = await area.s3.client.send(
    new ListObjectsV2Command({ Bucket: area.bucket, Prefix: area.key(rel) }),
    { abortSignal: signal },
  );
  return (out.Contents ?? []).some((o) => o.Key === area.key(rel));
}

async function listAfterWrite(area: BlobArea, opts: ProbeOptions): Promise<string> {
  const rel = `listed-${crypto.randomUUID()}`;
  await put(area, rel, "x", { IfNoneMatch: "*" }, opts.signal);
  if (!(await listed(area, rel, opts.signal))) {
    throw new Error("an object just created is missing from the listing");
  }
  await area.s3.client.send(new DeleteObjectCommand({ Bucket: area.bucket, Key: area.key(rel) }), {
    abortSignal: opts.signal,
  });
  if (await listed(area, rel, opts.signal)) {
    throw new Error("an object just deleted still shows in the listing");
  }
  return "a created object was listed at once and a deleted one vanished at once";
}

/**
 * Lock expiry compares an object's Last-Modified with a response's Date:
 * both must come from one clock. The local clock's offset is only reported
 * (with serverTime, a skewed local clock cannot break a lease).
 */
async function clock(area: BlobArea, opts: ProbeOptions): Promise<string> {
  const before = Date.now();
  const out = await put(area, "clock", "t", {}, opts.signal);
  const after = Date.now();
  const date = serverDateOf(out)?.dateMs;
  if (date === undefined) throw new Error("the server sent no Date header");
  const head = await area.s3.client.send(
    new HeadObjectCommand({ Bucket: area.bucket, Key: area.key("clock") }),
    { abortSignal: opts.signal },
  );
  const lm = head.LastModified?.getTime();
  if (lm === undefined) throw new Error("the server sent no Last-Modified");
  if (Math.abs(lm - date) > 2_000) {
    throw new Error(
      `Last-Modified and Date differ by ${lm - date} ms for a fresh write: the server's clocks ` +
        `disagree, so lock expiry cannot be judged by them`,
    );
  }
  // Date is truncated to the second: the server's "now" was in [date, date + 1 s).
  const skew = date + 1_000 < before ? date + 1_000 - before : date > after ? date - after : 0;
  const note = Math.abs(skew) > CLOCK_SKEW_NOTE_MS
    ? ` (over ${CLOCK_SKEW_NOTE_MS / 1000}s: harmless for locks, which use the server clock, ` +
      `but fix the local clock, NTP)`
    : "";
  return `server Date agrees with Last-Modified; server clock vs local clock: ` +
    `${skew >= 0 ? "+" : ""}${skew} ms${note}`;
}

async function cleanUp(area: BlobArea): Promise<void> {
  for await (const page of listPages(area, "", { what: "the probe area" })) {
    const keys = (page.Contents ?? []).flatMap((
      o,
    ) => (o.Key === undefined ? [] : [{ Key: o.Key }]));
    if (keys.length > 0) {
      await area.s3.client.send(
        new DeleteObjectsCommand({ Bucket: area.bucket, Delete: { Objects: keys, Quiet: true } }),
      ).catch(async () => {
        for (const k of keys) {
          await area.s3.client.send(new DeleteObjectCommand({ Bucket: area.bucket, ...k }));
        }
      });
    }
  }
}
