/**
 * Reading a provider's capabilities once, safely (SPEC §4).
 *
 * A provider without `capabilities()`, or whose `capabilities()` throws or
 * returns something that is not an object, gets all-false capabilities (the
 * global path) and a warning. `--disable-cap NAME` forces one off.
 *
 * @example
 * ```ts
 * import { readCapabilities } from "./capabilities.ts";
 * const { caps, warnings } = readCapabilities({ capabilities: () => null } as never, []);
 * console.log(caps.scopedSync, warnings.length); // false 1
 * ```
 * @module
 */
import { UsageError } from "../errors.ts";
import {
  type Capabilities,
  CAPABILITY_NAMES,
  type CapabilityName,
  type Provider,
} from "./contract.ts";
import { printable } from "./stale.ts";

/** All-false capabilities: the safe global path. */
export const NO_CAPABILITIES: Readonly<Capabilities> = Object.freeze({
  scopedSync: false,
  atomicCommit: false,
  serverTime: false,
  rangedReads: false,
  maxConcurrency: 4,
});

/** One-line meaning of each capability, for `caps`. */
export const CAPABILITY_MEANINGS: Record<CapabilityName | "maxConcurrency", string> = {
  scopedSync: "per-model locks and commits are safe; writers of different models never wait",
  atomicCommit: "records are a true compare-and-swap, so commits and locks are safe",
  serverTime: "lock expiry is judged by the datastore's clock, not this machine's",
  rangedReads: "blobs can be read by byte range",
  maxConcurrency: "suggested parallel transfers",
};

/** Capabilities as read, with any warnings to log. */
export interface CapabilityReading {
  caps: Capabilities;
  /** What the provider declared, before `--disable-cap` (null when unusable). */
  declared: Capabilities | null;
  disabled: CapabilityName[];
  warnings: string[];
}

/** Validates `--disable-cap` names; throws UsageError for an unknown one. */
export function parseDisabledCaps(names: readonly string[]): CapabilityName[] {
  const out: CapabilityName[] = [];
  for (const raw of names) {
    for (const name of raw.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
      if (!(CAPABILITY_NAMES as readonly string[]).includes(name)) {
        throw new UsageError(
          `Unknown capability ${JSON.stringify(name)} for --disable-cap. ` +
            `Use one of: ${CAPABILITY_NAMES.join(", ")}.`,
        );
      }
      if (!out.includes(name as CapabilityName)) out.push(name as CapabilityName);
    }
  }
  return out;
}

/**
 * Reads capabilities once. Never throws for a misbehaving provider: it falls
 * back to {@linkcode NO_CAPABILITIES} with a warning.
 */
export function readCapabilities(
  provider: Pick<Provider, "capabilities"> & { type?: string },
  disable: readonly CapabilityName[],
): CapabilityReading {
  const warnings: string[] = [];
  const name = provider.type ?? "provider";
  let declared: Capabilities | null = null;
  if (typeof provider.capabilities !== "function") {
    warnings.push(
      `Datastore provider "${name}" declares no capabilities(); using the global lock path.`,
    );
  } else {
    let raw: unknown;
    try {
      raw = provider.capabilities();
    } catch (err) {
      warnings.push(
        `Datastore provider "${name}" capabilities() threw (${(err as Error)?.message ?? err}); ` +
          `using the global lock path.`,
      );
      raw = undefined;
    }
    if (raw !== undefined) {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
        warnings.push(
          `Datastore provider "${name}" capabilities() returned ${
            raw === null ? "null" : typeof raw
          }, ` +
            `not an object; using the global lock path.`,
        );
      } else {
        const r = raw as Record<string, unknown>;
        if (typeof r.limitation === "string" && r.limitation !== "") {
          warnings.push(printable(r.limitation, 400));
        }
        const mc = r.maxConcurrency;
        const res = r.clockResolutionMs;
        declared = {
          scopedSync: r.scopedSync === true,
          atomicCommit: r.atomicCommit === true,
          serverTime: r.serverTime === true,
          rangedReads: r.rangedReads === true,
          ...(typeof res === "number" && Number.isFinite(res) && res > 0
            ? { clockResolutionMs: Math.min(res, 60_000) }
            : {}),
          maxConcurrency: typeof mc === "number" && Number.isInteger(mc) && mc > 0
            ? Math.min(mc, 256)
            : NO_CAPABILITIES.maxConcurrency,
        };
      }
    }
  }
  const caps: Capabilities = { ...(declared ?? NO_CAPABILITIES) };
  if (caps.scopedSync && !caps.atomicCommit) {
    warnings.push(
      `Datastore provider "${name}" declares scopedSync without atomicCommit, which is unsafe; ` +
        `using the global lock path.`,
    );
    caps.scopedSync = false;
  }
  for (const d of disable) caps[d] = false;
  if (!caps.atomicCommit) caps.scopedSync = false;
  return { caps, declared, disabled: [...disable], warnings };
}

/** Checks capability data for the conformance kit: returns problems, empty when sane. */
export function capabilityProblems(raw: unknown): string[] {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return [`capabilities() must return an object, got ${raw === null ? "null" : typeof raw}`];
  }
  const r = raw as Record<string, unknown>;
  const problems: string[] = [];
  for (const k of CAPABILITY_NAMES) {
    if (typeof r[k] !== "boolean") problems.push(`${k} must be a boolean`);
  }
  if (
    r.clockResolutionMs !== undefined &&
    (typeof r.clockResolutionMs !== "number" || !(r.clockResolutionMs >= 0))
  ) {
    problems.push("clockResolutionMs must be a non-negative number");
  }
  if (
    typeof r.maxConcurrency !== "number" || !Number.isInteger(r.maxConcurrency) ||
    r.maxConcurrency < 1
  ) {
    problems.push("maxConcurrency must be a positive integer");
  }
  if (r.scopedSync === true && r.atomicCommit !== true) {
    problems.push("scopedSync requires atomicCommit");
  }
  return problems;
}
