/**
 * A test decorator around any datastore that kills (SIGKILL) or stops
 * (SIGSTOP) its own process at one chosen provider operation: a provider
 * module (`--datastore module:stress/crashpoint.ts`, like
 * tests/fixtures/slow_store.ts) that opens the datastore named by
 * `MODELSYNC_TEST_CRASH_INNER` and counts its calls.
 *
 * `MODELSYNC_TEST_CRASH` names the point as `OP[:PREFIX]#N:ACTION`:
 *
 * - `OP`: a provider operation, `putBlob`, `getBlob`, `deleteBlob`,
 *   `getRecord`, `createRecord`, `replaceRecord`, `deleteRecord`, or `write`
 *   (any of the three record writes);
 * - `PREFIX`: for record operations, only keys starting with it count
 *   (`heads/` for commits, `history/`, `leases/`);
 * - `N`: the N-th such call of this process (from 1);
 * - `ACTION`: `before` (SIGKILL before the call reaches the datastore),
 *   `after` (SIGKILL once it returned, before the caller sees the answer),
 *   `stop-before` or `stop-after` (SIGSTOP there; the harness sends SIGCONT).
 *
 * So `putBlob#3:after` dies after the third blob upload, `write:history/#1:before`
 * between the uploads and the commit, `write:heads/#1:after` right after the
 * head moved. Naming points by operation (not by time) keeps them meaningful
 * however the sync engine orders its work. Before it acts it writes one line
 * `crashpoint: POINT` to stderr, so the harness knows the point was reached.
 *
 * Only the process meant to crash uses it; every other process opens the
 * inner datastore directly. Nothing in the product knows about it.
 *
 * @module
 */
import { z } from "zod";
import { createProvider } from "../src/providers/mod.ts";
import { parseDatastoreSpec } from "../src/repo/datastore_spec.ts";
import type { Provider, ProviderModule } from "../src/provider/api.ts";

/** The operations a point can name. */
export const CRASH_OPS = [
  "putBlob",
  "getBlob",
  "deleteBlob",
  "getRecord",
  "createRecord",
  "replaceRecord",
  "deleteRecord",
  "write",
] as const;
/** A provider operation. */
export type CrashOp = typeof CRASH_OPS[number];
/** What happens at the point. */
export type CrashAction = "before" | "after" | "stop-before" | "stop-after";

/** One point of one process. */
export interface CrashPoint {
  op: CrashOp;
  prefix?: string;
  n: number;
  action: CrashAction;
}

/** `putBlob#3:after`, `write:heads/#1:before`. */
export function formatCrashPoint(p: CrashPoint): string {
  return `${p.op}${p.prefix === undefined ? "" : `:${p.prefix}`}#${p.n}:${p.action}`;
}

/** Parses {@linkcode formatCrashPoint}'s form; throws naming the problem. */
export function parseCrashPoint(text: string): CrashPoint {
  const m = /^([A-Za-z]+)(?::([^#]+))?#(\d+):(before|after|stop-before|stop-after)$/.exec(
    text.trim(),
  );
  if (m === null || !(CRASH_OPS as readonly string[]).includes(m[1]) || Number(m[3]) < 1) {
    throw new Error(
      `MODELSYNC_TEST_CRASH: ${JSON.stringify(text)} is not OP[:PREFIX]#N:ACTION ` +
        `(OP one of ${CRASH_OPS.join(", ")}; ACTION before, after, stop-before or stop-after)`,
    );
  }
  return {
    op: m[1] as CrashOp,
    ...(m[2] === undefined ? {} : { prefix: m[2] }),
    n: Number(m[3]),
    action: m[4] as CrashAction,
  };
}

const RECORD_WRITES = new Set<CrashOp>(["createRecord", "replaceRecord", "deleteRecord"]);

/** Counts calls and acts when the chosen one comes. */
class Trigger {
  #count = 0;
  constructor(readonly point: CrashPoint) {}

  #matches(op: CrashOp, key: string | undefined): boolean {
    const p = this.point;
    const sameOp = p.op === op || (p.op === "write" && RECORD_WRITES.has(op));
    return sameOp && (p.prefix === undefined || (key ?? "").startsWith(p.prefix));
  }

  /** Wraps one call: acts before or after it when it is the chosen one. */
  async around<T>(op: CrashOp, key: string | undefined, call: () => Promise<T>): Promise<T> {
    if (!this.#matches(op, key) || ++this.#count !== this.point.n) return await call();
    const when = this.point.action;
    if (when === "before" || when === "stop-before") this.#act(key);
    const out = await call();
    if (when === "after" || when === "stop-after") this.#act(key);
    return out;
  }

  #act(key: string | undefined): void {
    const line = `crashpoint: ${formatCrashPoint(this.point)}${key ? ` (${key})` : ""}\n`;
    Deno.stderr.writeSync(new TextEncoder().encode(line));
    const stop = this.point.action.startsWith("stop");
    Deno.kill(Deno.pid, stop ? "SIGSTOP" : "SIGKILL");
  }
}

const crashpoint: ProviderModule<Record<string, never>> = {
  type: "crashpoint",
  configSchema: z.object({}).strict() as unknown as z.ZodType<Record<string, never>>,
  async create(_config, context) {
    const spec = Deno.env.get("MODELSYNC_TEST_CRASH_INNER");
    if (spec === undefined) throw new Error("MODELSYNC_TEST_CRASH_INNER is not set");
    const t = new Trigger(parseCrashPoint(Deno.env.get("MODELSYNC_TEST_CRASH") ?? ""));
    const inner: Provider = await createProvider(
      parseDatastoreSpec(spec, context.baseDir) as { type: string },
      context,
    );
    const p: Provider = {
      type: inner.type,
      hasBlobs: (h, o) => inner.hasBlobs(h, o),
      putBlob: (h, s, o) => t.around("putBlob", undefined, () => inner.putBlob(h, s, o)),
      getBlob: (h, o) => t.around("getBlob", undefined, () => inner.getBlob(h, o)),
      listBlobs: (o) => inner.listBlobs(o),
      deleteBlob: (h, o) => t.around("deleteBlob", undefined, () => inner.deleteBlob(h, o)),
      getRecord: (k, o) => t.around("getRecord", k, () => inner.getRecord(k, o)),
      createRecord: (k, b, o) => t.around("createRecord", k, () => inner.createRecord(k, b, o)),
      replaceRecord: (k, b, v, o) =>
        t.around("replaceRecord", k, () => inner.replaceRecord(k, b, v, o)),
      deleteRecord: (k, v, o) => t.around("deleteRecord", k, () => inner.deleteRecord(k, v, o)),
      listRecords: (pr, o) => inner.listRecords(pr, o),
      describe: () => inner.describe(),
      capabilities: () =>
        inner.capabilities?.() ?? {
          scopedSync: false,
          atomicCommit: false,
          serverTime: false,
          rangedReads: false,
          maxConcurrency: 1,
        },
      open: (o) => inner.open(o),
      init: (o) => inner.init(o),
      close: () => inner.close(),
    };
    return p;
  },
};

export default crashpoint;
