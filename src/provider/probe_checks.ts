/**
 * Runs a provider's live `caps --probe` checks one after another: each check
 * returns a detail line when it held and throws (its message becomes the
 * detail) when it did not. An abort stops the run; `cleanUp` runs at the end
 * whatever happened, and its own failure is ignored.
 *
 * @example
 * ```ts
 * import { runProbeChecks } from "./probe_checks.ts";
 * const out = await runProbeChecks([
 *   [{ name: "list-after-write" }, () => Promise.resolve("listed at once")],
 * ], { cleanUp: () => Promise.resolve() });
 * console.log(out[0].ok); // true
 * ```
 * @module
 */
import type { ProbeCheck } from "./contract.ts";

/** One check: its name (and the capability it backs), and how to run it. */
export type ProbeStep = [Omit<ProbeCheck, "ok" | "detail">, () => Promise<string>];

/** Runs `checks` in order and reports each; see the module documentation. */
export async function runProbeChecks(
  checks: readonly ProbeStep[],
  opts: { signal?: AbortSignal; cleanUp: () => Promise<unknown> },
): Promise<ProbeCheck[]> {
  const out: ProbeCheck[] = [];
  try {
    for (const [head, run] of checks) {
      opts.signal?.throwIfAborted();
      try {
        out.push({ ...head, ok: true, detail: await run() });
      } catch (err) {
        if (err instanceof DOMException && err.name === "AbortError") throw err;
        out.push({ ...head, ok: false, detail: (err as Error)?.message ?? String(err) });
      }
    }
  } finally {
    await opts.cleanUp().catch(() => {});
  }
  return out;
}
