/**
 * Live checks of the filesystem provider for `modelsync caps --probe`. They
 * run in a private directory under `tmp/` (removed afterwards) and exercise
 * the same primitives and code the provider uses.
 *
 * @module
 */
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { ConflictError } from "../../errors.ts";
import { makeManifest } from "../../model/manifest.ts";
import type { ProbeCheck } from "../../provider/contract.ts";
import { type ProbeStep, runProbeChecks } from "../../provider/probe_checks.ts";
import { fsFail, isExists, Signals, TempFiles } from "./_fs.ts";
import { LockStore } from "./locks.ts";
import { ManifestStore } from "./manifests.ts";

/** Clock skew above this fails the clock check. */
export const MAX_CLOCK_SKEW_MS = 30_000;
const RACERS = 8;

/** Who probes, and the signal to honour. */
export interface ProbeOptions {
  pid: number;
  host: string;
  signal?: AbortSignal;
}

/** Runs every check in a fresh directory under `tmpDir`, then removes it. */
export async function runProbe(tmpDir: string, opts: ProbeOptions): Promise<ProbeCheck[]> {
  opts.signal?.throwIfAborted();
  try {
    await Deno.mkdir(tmpDir); // not recursive: never recreate a missing root
  } catch (err) {
    if (!isExists(err)) throw fsFail(err, "create the probe directory in", tmpDir);
  }
  const dir = join(tmpDir, `probe-${opts.pid}-${randomBytes(6).toString("hex")}`);
  await Deno.mkdir(dir);
  const temps = new TempFiles(join(dir, "tmp"), opts.pid);
  const checks: ProbeStep[] = [
    [{ name: "concurrent create-if-absent", capability: "atomicCommit" }, () => race(dir)],
    [{ name: "compare-and-swap", capability: "atomicCommit" }, () => cas(dir, temps, opts)],
    [{ name: "atomic replace", capability: "scopedSync" }, () => replace(dir)],
    [{ name: "conditional delete", capability: "scopedSync" }, () => condDelete(dir, temps, opts)],
    [{ name: "list-after-write" }, () => listAfterWrite(dir)],
    [{ name: "clock skew" }, () => clock(dir)],
  ];
  return await runProbeChecks(checks, {
    signal: opts.signal,
    cleanUp: () => Deno.remove(dir, { recursive: true }),
  });
}

async function race(dir: string): Promise<string> {
  const target = join(dir, "race-target");
  const sources = await Promise.all(Array.from({ length: RACERS }, async (_, i) => {
    const p = join(dir, `race-src-${i}`);
    await Deno.writeTextFile(p, String(i));
    return p;
  }));
  const results = await Promise.allSettled(sources.map((s) => Deno.link(s, target)));
  const won = results.filter((r) => r.status === "fulfilled").length;
  const refused = results.filter((r) => r.status === "rejected" && isExists(r.reason)).length;
  const detail = `${RACERS} concurrent create-exclusive links: ${won} won, ${refused} refused`;
  if (won !== 1 || refused !== RACERS - 1) throw new Error(`${detail}; expected exactly 1 winner`);
  return detail;
}

async function cas(dir: string, temps: TempFiles, opts: ProbeOptions): Promise<string> {
  const store = new ManifestStore(join(dir, "manifests"), temps);
  const model = { type: "probe", id: "p1" };
  const by = { holder: "probe", host: opts.host, pid: opts.pid };
  await store.commit(model, 0, makeManifest(model, 1, [], by), opts.signal);
  await store.commit(model, 1, makeManifest(model, 2, [], by), opts.signal);
  try {
    await store.commit(model, 1, makeManifest(model, 2, [], by), opts.signal);
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
    const cur = await store.get(model, opts.signal);
    if (cur?.manifest.generation !== 2) {
      throw new Error(
        `after a refused commit the model reads generation ${cur?.manifest.generation}`,
      );
    }
    return "a commit on a stale generation was refused; the current generation was kept";
  }
  throw new Error("a commit on a stale generation was accepted (no compare-and-swap)");
}

async function replace(dir: string): Promise<string> {
  const size = 512 * 1024;
  const target = join(dir, "swap");
  await Deno.writeFile(target, new Uint8Array(size).fill(1));
  let done = false;
  let reads = 0;
  let torn = 0;
  const writer = (async () => {
    try {
      for (let i = 2; i < 26; i++) {
        const tmp = join(dir, `swap-${i}`);
        await Deno.writeFile(tmp, new Uint8Array(size).fill(i));
        await Deno.rename(tmp, target);
      }
    } finally {
      done = true;
    }
  })();
  const reader = (async () => {
    while (!done) {
      const b = await Deno.readFile(target);
      reads++;
      if (b.length !== size || b.some((x) => x !== b[0])) torn++;
    }
  })();
  await Promise.all([writer, reader]);
  const detail = `${reads} reads during 24 renames over a ${size / 1024} KiB file`;
  if (torn > 0) throw new Error(`${detail}: ${torn} saw a partial or mixed file`);
  return `${detail} never saw a partial file`;
}

async function condDelete(dir: string, temps: TempFiles, opts: ProbeOptions): Promise<string> {
  const locks = new LockStore(join(dir, "locks"), temps, {
    host: opts.host,
    pid: opts.pid,
    skewMarginMs: 0,
  });
  const h = locks.handle({ kind: "global" }, new Signals(opts.signal));
  const got = await h.tryAcquire({
    holder: "probe",
    host: opts.host,
    pid: opts.pid,
    operation: "probe",
    ttlMs: 30_000,
  });
  if (!got.acquired) throw new Error("could not take a lock in an empty directory");
  if (await h.forceRelease("not-the-nonce")) {
    throw new Error("a delete with a wrong nonce succeeded");
  }
  if ((await h.inspect()) === null) throw new Error("a delete with a wrong nonce removed the lock");
  if (!(await h.forceRelease(got.record.nonce))) throw new Error("a nonce-checked delete failed");
  if ((await h.inspect()) !== null) throw new Error("the lock survived its nonce-checked delete");
  return "a delete with a stale nonce was refused; with the current nonce it succeeded";
}

async function listAfterWrite(dir: string): Promise<string> {
  const name = `listed-${randomBytes(4).toString("hex")}`;
  const tmp = join(dir, `${name}.tmp`);
  await Deno.writeTextFile(tmp, "x");
  await Deno.link(tmp, join(dir, name));
  const names = async () => {
    const out = new Set<string>();
    for await (const e of Deno.readDir(dir)) out.add(e.name);
    return out;
  };
  if (!(await names()).has(name)) throw new Error("a file just created is missing from readdir");
  await Deno.remove(join(dir, name));
  if ((await names()).has(name)) throw new Error("a file just removed still shows in readdir");
  return "a created file was listed at once and a removed one vanished at once";
}

async function clock(dir: string): Promise<string> {
  const path = join(dir, "clock");
  const before = Date.now();
  await Deno.writeTextFile(path, "t");
  const after = Date.now();
  const mtime = (await Deno.stat(path)).mtime?.getTime();
  if (mtime === undefined) throw new Error("the file system reports no modification times");
  // Coarse timestamps (1-2 s) can put mtime up to 2 s before the write.
  const skew = mtime > after ? mtime - after : mtime < before - 2_000 ? mtime - before : 0;
  const detail = `datastore clock vs local clock: ${skew >= 0 ? "+" : ""}${skew} ms`;
  if (Math.abs(skew) > MAX_CLOCK_SKEW_MS) {
    throw new Error(`${detail}, over ${MAX_CLOCK_SKEW_MS / 1000}s: fix the clocks (NTP)`);
  }
  return detail;
}
