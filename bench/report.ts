/**
 * The benchmark's results: figures with raw samples, medians, ratios against
 * a peer, targets and verdicts; printed as a table and written as JSON.
 *
 * @example
 * ```ts
 * import { median, row } from "./report.ts";
 * const r = row({
 *   figure: "3", name: "no-op push", unit: "s",
 *   samples: [0.4, 0.5, 0.6], peer: "git status", peerSamples: [0.5, 0.5, 0.5],
 *   target: { max: 1.5, of: "ratio" },
 * });
 * console.log(median([3, 1, 2]), r.ratio, r.verdict); // 2 1 "PASS"
 * ```
 * @module
 */

/**
 * PASS/MISS against a target, INFO without one, SKIP when not measured (a
 * missing peer or server), FAIL when a run failed (the error is in the results).
 */
export type Verdict = "PASS" | "MISS" | "INFO" | "SKIP" | "FAIL";

/** A target: the ratio to the peer, or the median itself, at most `max`. */
export interface Target {
  max: number;
  of: "ratio" | "value";
}

/** One line of the table. */
export interface Row {
  figure: string;
  name: string;
  /** Unit of the samples: "s", "ms", "MiB", "requests". */
  unit: string;
  samples: number[];
  median: number | null;
  peer?: string;
  peerSamples?: number[];
  peerMedian?: number | null;
  /** median / peerMedian. */
  ratio?: number | null;
  target?: Target;
  verdict: Verdict;
  /** Why it was skipped, or what to know about it. */
  note?: string;
}

/** What `row()` takes. */
export interface RowInput {
  figure: string;
  name: string;
  unit: string;
  samples: number[];
  peer?: string;
  peerSamples?: number[];
  target?: Target;
  note?: string;
}

/** The median of the samples (mean of the middle two for an even count); null when empty. */
export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** a / b, or null when either is missing or b is 0. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return null;
  return a / b;
}

/** PASS when the judged number is at most the target, MISS otherwise, INFO without a target. */
export function verdict(value: number | null | undefined, target?: Target): Verdict {
  if (target === undefined) return "INFO";
  if (value === null || value === undefined) return "SKIP";
  return value <= target.max ? "PASS" : "MISS";
}

/** Builds a row: medians, ratio and verdict from the raw samples. */
export function row(input: RowInput): Row {
  const m = median(input.samples);
  const r: Row = { ...input, median: m, verdict: "INFO" };
  if (input.peerSamples !== undefined) {
    r.peerMedian = median(input.peerSamples);
    r.ratio = ratio(m, r.peerMedian);
  }
  const judged = input.target?.of === "ratio" ? r.ratio : m;
  r.verdict = verdict(judged, input.target);
  return r;
}

/**
 * A row against a peer, or, when the peer is missing (`missing` says why),
 * the modelsync median alone with verdict SKIP: no ratio is ever estimated.
 */
export function peerRow(input: RowInput, missing: string | null): Row {
  if (missing === null) return row(input);
  const { peerSamples: _, ...rest } = input;
  return { ...row(rest), target: input.target, verdict: "SKIP", note: missing };
}

/** A row for a figure that could not be measured (a missing peer, no S3 server). */
export function skipped(
  figure: string,
  name: string,
  reason: string,
  extra: { unit?: string; peer?: string; target?: Target } = {},
): Row {
  return {
    figure,
    name,
    unit: extra.unit ?? "s",
    samples: [],
    median: null,
    peer: extra.peer,
    target: extra.target,
    verdict: "SKIP",
    note: reason,
  };
}

/** A number with its unit, e.g. "0.412 s", "3 requests", "61.2 MiB". */
export function fmt(v: number | null | undefined, unit: string): string {
  if (v === null || v === undefined) return "-";
  if (unit === "requests") return `${Math.round(v)} req`;
  if (unit === "s") return `${v.toFixed(v < 10 ? 3 : 1)} s`;
  if (unit === "ms") return `${v.toFixed(2)} ms`;
  return `${v.toFixed(1)} ${unit}`;
}

/** "≤ 1.5×" or "≤ 200 MiB". */
export function fmtTarget(row: Row): string {
  if (row.target === undefined) return "-";
  return row.target.of === "ratio" ? `≤ ${row.target.max}×` : `≤ ${fmt(row.target.max, row.unit)}`;
}

/** The table as Markdown (GitHub-readable and fine on a terminal). */
export function table(rows: Row[]): string {
  const head = ["#", "figure", "modelsync", "peer", "peer median", "ratio", "target", "verdict"];
  const lines = rows.map((r) => [
    r.figure,
    r.name,
    fmt(r.median, r.unit),
    r.peer ?? "-",
    fmt(r.peerMedian, r.unit),
    r.ratio === null || r.ratio === undefined ? "-" : `${r.ratio.toFixed(2)}×`,
    fmtTarget(r),
    (r.verdict === "SKIP" || r.verdict === "FAIL") && r.note
      ? `${r.verdict} (${r.note})`
      : r.verdict,
  ]);
  const all = [head, ...lines];
  const widths = head.map((_, i) => Math.max(...all.map((l) => l[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  // The separator as `deno fmt` writes it, so the table pastes into the README unchanged.
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...lines.map(line)].join("\n");
}

/** The notes of the rows that have one, one line each (`- 9 NAME: NOTE`), for below the table. */
export function notes(rows: Row[]): string {
  return rows
    .filter((r) => r.note && r.verdict !== "SKIP" && r.verdict !== "FAIL")
    .map((r) => `- ${r.figure} ${r.name}: ${r.note}`)
    .join("\n");
}

/** The machine the figures were taken on. */
export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  deno: string;
  /** 1, 5 and 15 minute load averages at the start of the run. */
  loadAverage: number[];
  /** The same at the end: other work on the machine makes every figure noisier. */
  loadAverageEnd?: number[];
  peers: Record<string, string | null>;
  memoryMethod: string;
}

/** What `bench/results/latest.json` holds. */
export interface Results {
  schema: "modelsync.bench/1";
  date: string;
  mode: "quick" | "full";
  runs: number;
  /** Figures run (all unless --only). */
  figures?: string[];
  durationS: number;
  machine: Machine;
  sizes: Record<string, unknown>;
  rows: Row[];
  errors: { figure: string; message: string }[];
}
