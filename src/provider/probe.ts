/**
 * `caps --probe`: live checks of a datastore's primitives, written once for
 * every provider. They work under a throw-away prefix `probe/PID-RANDOM/`
 * (and one random blob), removed at the end; each check says what it tested
 * and which capability it backs. The conformance kit runs the same checks.
 *
 * @example
 * ```ts ignore
 * import { runProbe } from "./probe.ts";
 * for (const c of await runProbe(provider)) console.log(c.ok, c.name, c.detail);
 * ```
 * @module
 */
import { randomBytes } from "node:crypto";
import { hashBytes } from "../model/hash.ts";
import type { CallOptions, Capabilities, ProbeCheck, Provider } from "./contract.ts";
import { listAllRecords } from "./keys.ts";
import { type ProbeStep, runProbeChecks } from "./probe_checks.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Largest clock offset between this machine and the store the probe accepts. */
const MAX_SKEW_MS = 30_000;

/**
 * Runs every live check against `p`; never throws for a failed check.
 * `caps`: the capabilities the command already read (so `capabilities()` is
 * called once per command); without it they are read here.
 */
export function runProbe(
  p: Provider,
  opts: CallOptions & { contenders?: number; caps?: Partial<Capabilities> } = {},
): Promise<ProbeCheck[]> {
  const prefix = `probe/${Deno.pid}-${randomBytes(6).toString("hex")}/`;
  const n = opts.contenders ?? 8;
  const signal = opts.signal;
  const call = signal === undefined ? {} : { signal };
  let caps: Partial<Capabilities> = opts.caps ?? {};
  if (opts.caps === undefined) {
    try {
      caps = p.capabilities?.() ?? {};
    } catch {
      caps = {};
    }
  }
  const blob = randomBytes(64 * 1024);
  const hash = hashBytes(blob);
  let blobStored = false;
  const key = (name: string) => `${prefix}${name}`;
  const body = (text: string) => encoder.encode(text);

  const steps: ProbeStep[] = [
    [{ name: "conditional writes" }, async () => {
      await p.createRecord(key("once"), body("first"), call);
      const again = await p.createRecord(key("once"), body("second"), call);
      if (again !== null) {
        throw new Error(
          "a second create-if-absent of one record was accepted: the store ignores conditional " +
            "writes, so modelsync refuses locks and commits on it",
        );
      }
      const got = await p.getRecord(key("once"), call);
      if (got === null || decoder.decode(got.bytes) !== "first") {
        throw new Error("the record created first was not kept");
      }
      return "a second create-if-absent was refused and the first record kept";
    }],
    [{ name: "concurrent create-if-absent", capability: "atomicCommit" }, async () => {
      const results = await Promise.all(
        Array.from({ length: n }, (_, i) => p.createRecord(key("race"), body(`writer ${i}`), call)),
      );
      const won = results.flatMap((v, i) => (v === null ? [] : [i]));
      if (won.length !== 1) {
        throw new Error(`${n} concurrent creates of one record: ${won.length} won; expected 1`);
      }
      const got = await p.getRecord(key("race"), call);
      if (got === null || decoder.decode(got.bytes) !== `writer ${won[0]}`) {
        throw new Error("the record read back is not the winner's");
      }
      return `${n} concurrent creates of one record: 1 won, ${n - 1} refused`;
    }],
    [{ name: "compare-and-swap", capability: "atomicCommit" }, async () => {
      const v1 = await p.createRecord(key("cas"), body("v1"), call);
      if (v1 === null) throw new Error("could not create a fresh record");
      const v2 = await p.replaceRecord(key("cas"), body("v2"), v1, call);
      if (v2 === null) throw new Error("a replace on the current version was refused");
      if ((await p.replaceRecord(key("cas"), body("stale"), v1, call)) !== null) {
        throw new Error("a replace on a stale version was accepted (no compare-and-swap)");
      }
      const results = await Promise.all(
        Array.from({ length: n }, (_, i) => p.replaceRecord(key("cas"), body(`w${i}`), v2, call)),
      );
      const won = results.filter((v) => v !== null).length;
      if (won !== 1) {
        throw new Error(`${n} concurrent replaces of one version: ${won} won; expected 1`);
      }
      return `a replace on a stale version was refused; ${n} concurrent replaces: 1 won`;
    }],
    [{ name: "conditional delete", capability: "scopedSync" }, async () => {
      const v1 = await p.createRecord(key("del"), body("a"), call);
      if (v1 === null) throw new Error("could not create a fresh record");
      const v2 = await p.replaceRecord(key("del"), body("b"), v1, call);
      if (v2 === null) throw new Error("a replace on the current version was refused");
      if (await p.deleteRecord(key("del"), v1, call)) {
        throw new Error("a delete on a stale version was accepted");
      }
      if (!(await p.deleteRecord(key("del"), v2, call))) {
        throw new Error("a delete on the current version was refused");
      }
      if ((await p.getRecord(key("del"), call)) !== null) {
        throw new Error("a deleted record can still be read");
      }
      return "a delete on a stale version was refused; on the current one it succeeded";
    }],
    [{ name: "versions change on every write" }, async () => {
      const seen = new Set<string>();
      let v = await p.createRecord(key("ver"), body("same"), call);
      for (let i = 0; v !== null && i < 3; i++) {
        if (seen.has(v)) throw new Error(`version ${v} came back after a write`);
        seen.add(v);
        v = await p.replaceRecord(key("ver"), body("same"), v, call);
      }
      if (v === null) throw new Error("a replace of identical bytes was refused");
      if (seen.has(v)) throw new Error(`version ${v} came back after a write`);
      return "four writes of identical bytes gave four versions";
    }],
    [{ name: "list-after-write" }, async () => {
      const v = await p.createRecord(key("list/a"), body("x"), call);
      if (v === null) throw new Error("could not create a fresh record");
      const listed = await listAllRecords(p, key("list/"), call);
      if (!listed.some((r) => r.key === key("list/a") && r.version === v)) {
        throw new Error("a record created a moment ago was not listed with its version");
      }
      if (!(await p.deleteRecord(key("list/a"), v, call))) {
        throw new Error("could not delete the record");
      }
      if ((await listAllRecords(p, key("list/"), call)).some((r) => r.key === key("list/a"))) {
        throw new Error("a deleted record was still listed");
      }
      return "a created record was listed at once and a deleted one vanished at once";
    }],
    [{ name: "atomic replace", capability: "scopedSync" }, async () => {
      const bodies = Array.from(
        { length: 12 },
        (_, i) => `${i}:`.padEnd(256 * 1024, String(i % 10)),
      );
      let v = await p.createRecord(key("big"), body(bodies[0]), call);
      if (v === null) throw new Error("could not create a fresh record");
      let done = false;
      let reads = 0;
      const reader = (async () => {
        while (!done || reads < 8) {
          const got = await p.getRecord(key("big"), call);
          reads++;
          if (got !== null && !bodies.includes(decoder.decode(got.bytes))) {
            throw new Error("a read saw a record that was never written whole");
          }
        }
      })();
      for (let i = 1; i < bodies.length && v !== null; i++) {
        v = await p.replaceRecord(key("big"), body(bodies[i]), v, call);
      }
      done = true;
      await reader;
      if (v === null) throw new Error("a replace on the current version was refused");
      return `${reads} reads during ${
        bodies.length - 1
      } replaces of a 256 KiB record never saw a partial record`;
    }],
    [{ name: "store clock", capability: "serverTime" }, async () => {
      const v = await p.createRecord(key("clock"), body("t"), call);
      if (v === null) throw new Error("could not create a fresh record");
      const before = Date.now();
      const got = await p.getRecord(key("clock"), call);
      const after = Date.now();
      if (got === null) throw new Error("the record vanished");
      const resolution = caps.clockResolutionMs ?? 0;
      if (got.storeNowMs === undefined || got.modifiedMs === undefined) {
        if (caps.serverTime) throw new Error("the store returned no clock with the record");
        if (got.modifiedMs === undefined) {
          return "the store has no clock: lock expiry by this machine's clock";
        }
        const skew = got.modifiedMs - before;
        if (Math.abs(skew) > MAX_SKEW_MS) {
          throw new Error(`the store's file times are ${signed(skew)} ms off this clock`);
        }
        return `no store clock; its file times vs this clock: ${signed(skew)} ms`;
      }
      if (got.modifiedMs > got.storeNowMs + resolution + 1_000) {
        throw new Error("the store's time of writing is after its own now");
      }
      const offset = got.storeNowMs - Math.round((before + after) / 2);
      return `store clock agrees with its write times; store clock vs this clock: ${
        signed(offset)
      } ms`;
    }],
    [{ name: "blob round trip" }, async () => {
      await p.putBlob(hash, { kind: "bytes", bytes: blob }, call);
      blobStored = true;
      if (!(await p.hasBlobs([hash], call)).has(hash)) {
        throw new Error("a stored blob is not found");
      }
      const got = new Uint8Array(await new Response(await p.getBlob(hash, call)).arrayBuffer());
      if (hashBytes(got) !== hash) throw new Error("a blob read back differs");
      return "a 64 KiB blob was stored, found and read back";
    }],
    [{ name: "ranged read", capability: "rangedReads" }, async () => {
      if (!caps.rangedReads) return "not declared";
      if (!blobStored) await p.putBlob(hash, { kind: "bytes", bytes: blob }, call);
      blobStored = true;
      const range = { offset: 1000, length: 5000 };
      const got = new Uint8Array(
        await new Response(await p.getBlob(hash, { ...call, range })).arrayBuffer(),
      );
      if (hashBytes(got) !== hashBytes(blob.subarray(1000, 6000))) {
        throw new Error("a ranged read returned other bytes than the range");
      }
      return "a 5,000-byte range read back exactly";
    }],
  ];
  return runProbeChecks(steps, {
    ...call,
    cleanUp: async () => {
      if (blobStored) await p.deleteBlob(hash).catch(() => {});
      for (const r of await listAllRecords(p, prefix)) {
        await p.deleteRecord(r.key, r.version).catch(() => false);
      }
    },
  });
}

function signed(ms: number): string {
  return `${ms >= 0 ? "+" : ""}${ms}`;
}
