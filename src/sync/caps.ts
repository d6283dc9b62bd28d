/**
 * `caps`: what the datastore can do, which lock path the manager takes, the
 * lock timings, and with --probe live checks of the declared capabilities.
 *
 * @module
 */
import { SKEW_MARGIN_MS } from "../lock/mod.ts";
import { CAPABILITY_MEANINGS } from "../provider/capabilities.ts";
import type { Capabilities, ProbeCheck } from "../provider/contract.ts";
import { formatDuration } from "../duration.ts";
import type { Session } from "./session.ts";

/** The `caps` result. */
export interface CapsResult {
  schema: "modelsync.caps/1";
  provider: string;
  location: string;
  capabilities: Capabilities;
  declared: Capabilities | null;
  disabled: string[];
  lockPath: "scoped" | "global";
  lock: { ttlMs: number; renewEveryMs: number; lockTimeoutMs: number; skewMarginMs: number };
  warnings: string[];
  probe?: ProbeCheck[];
  /** Not printed: 6 when a declared capability failed its probe. */
  exitCode: number;
}

/** Reads (and with `probe`, tests) the datastore's capabilities. */
export async function runCaps(s: Session, opts: { probe: boolean }): Promise<CapsResult> {
  const { caps, declared, disabled, warnings } = s.capabilities;
  const where = s.provider.describe();
  const result: CapsResult = {
    schema: "modelsync.caps/1",
    provider: where.type,
    location: where.location,
    capabilities: caps,
    declared,
    disabled,
    lockPath: caps.scopedSync ? "scoped" : "global",
    lock: {
      ttlMs: s.settings.lockTtlMs,
      renewEveryMs: Math.floor(s.settings.lockTtlMs / 3),
      lockTimeoutMs: s.settings.lockTimeoutMs,
      skewMarginMs: caps.serverTime ? 0 : SKEW_MARGIN_MS,
    },
    warnings,
    exitCode: 0,
  };
  if (opts.probe) {
    const checks: ProbeCheck[] = s.provider.probe
      ? await s.provider.probe({ signal: s.signal, caps: declared ?? caps })
      : [{ name: "probe", ok: false, detail: `the ${where.type} provider has no live probe` }];
    result.probe = checks;
    const failedDeclared = checks.some((c) =>
      !c.ok && (c.capability === undefined || declared?.[c.capability])
    );
    if (failedDeclared) result.exitCode = 6;
  }
  return result;
}

/** What each boolean capability means for this datastore, said for the value shown. */
const CAPABILITY_VALUE_MEANINGS = {
  scopedSync: {
    yes: CAPABILITY_MEANINGS.scopedSync,
    no: "one global lock for every write: writers of different models wait for each other",
  },
  atomicCommit: {
    yes: CAPABILITY_MEANINGS.atomicCommit,
    no: "records are not a compare-and-swap: only the global lock keeps writers apart",
  },
  serverTime: {
    yes: CAPABILITY_MEANINGS.serverTime,
    no: "lock expiry is judged by this machine's clock plus a skew margin",
  },
  rangedReads: {
    yes: CAPABILITY_MEANINGS.rangedReads,
    no: "blobs are read whole",
  },
} as const;

/** Human lines for `caps`. */
export function formatCaps(r: CapsResult): string[] {
  const yes = (b: boolean) => (b ? "yes" : "no ");
  const lines = [
    `provider     ${r.provider}`,
    `location     ${r.location}`,
    "",
    "capabilities",
  ];
  for (const name of ["scopedSync", "atomicCommit", "serverTime", "rangedReads"] as const) {
    const off = r.disabled.includes(name) ? " (disabled by --disable-cap)" : "";
    lines.push(
      `  ${name.padEnd(16)}${yes(r.capabilities[name])}  ${
        CAPABILITY_VALUE_MEANINGS[name][r.capabilities[name] ? "yes" : "no"]
      }${off}`,
    );
  }
  lines.push(
    `  ${"maxConcurrency".padEnd(16)}${
      String(r.capabilities.maxConcurrency).padEnd(4)
    } ${CAPABILITY_MEANINGS.maxConcurrency}`,
    "",
    `lock path    ${r.lockPath}${
      r.lockPath === "scoped"
        ? " (per-model locks; writers of different models never wait)"
        : " (one global lock for every write)"
    }`,
    `lock ttl     ${formatDuration(r.lock.ttlMs)}, renewed every ${
      formatDuration(r.lock.renewEveryMs)
    }; ` +
      `wait up to ${formatDuration(r.lock.lockTimeoutMs)}; expiry by ${
        r.capabilities.serverTime
          ? "the datastore's clock"
          : `this clock + ${formatDuration(r.lock.skewMarginMs)} margin`
      }`,
  );
  for (const w of r.warnings) lines.push(`warning      ${w}`);
  if (r.probe !== undefined) {
    lines.push("", "probe");
    for (const c of r.probe) {
      lines.push(
        `  ${c.ok ? "ok  " : "FAIL"}  ${c.name}${
          c.capability ? ` [${c.capability}]` : ""
        }: ${c.detail}`,
      );
    }
  }
  return lines;
}
