/**
 * The README chart: hand-built SVG bars for figure 10 (S3 + 100 ms: a
 * one-file flush alone and during a big flush; one flush alone and 8 at once,
 * scoped and global) and figures 1 and 2 (the same on a filesystem datastore,
 * context), labelled with seconds and ratios.
 * Transparent background; text follows the reader's light or dark mode.
 *
 * @example
 * ```ts
 * import { chartSvg } from "./chart.ts";
 * const svg = chartSvg([
 *   { title: "8 concurrent flushes (wall time)", bars: [
 *     { label: "scoped", seconds: 1.2, note: "0.40× global" },
 *     { label: "global", seconds: 3.0 },
 *   ] },
 * ]);
 * console.log(svg.startsWith("<svg")); // true
 * ```
 * @module
 */
import type { Row } from "./report.ts";

/** One bar. */
export interface Bar {
  label: string;
  seconds: number | null;
  /** Printed after the value, e.g. "1.3× alone". */
  note?: string;
  /** Highlight (the path the target is about). */
  accent?: boolean;
}

/** One group of bars with a title. */
export interface Panel {
  title: string;
  bars: Bar[];
}

/** Escapes text for XML. */
export function xmlEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

const WIDTH = 810;
const LABEL_W = 300;
const BAR_MAX = 330;
const BAR_H = 22;
const GAP = 8;

/** Renders the panels as one SVG document. */
export function chartSvg(panels: Panel[], caption = ""): string {
  const parts: string[] = [];
  let y = 16;
  for (const panel of panels) {
    const max = Math.max(0, ...panel.bars.map((b) => b.seconds ?? 0)) || 1;
    y += 14;
    parts.push(`<text class="title" x="0" y="${y}">${xmlEscape(panel.title)}</text>`);
    y += 12;
    for (const bar of panel.bars) {
      const w = bar.seconds === null ? 0 : Math.max(2, (bar.seconds / max) * BAR_MAX);
      const mid = y + BAR_H / 2 + 4;
      parts.push(
        `<text x="${LABEL_W - 8}" y="${mid}" text-anchor="end">${xmlEscape(bar.label)}</text>`,
      );
      parts.push(
        `<rect class="${bar.accent ? "accent" : "bar"}" x="${LABEL_W}" y="${y}" width="${
          w.toFixed(1)
        }" height="${BAR_H}" rx="3"/>`,
      );
      const value = bar.seconds === null ? "skipped" : `${bar.seconds.toFixed(2)} s`;
      const text = bar.note ? `${value}  (${bar.note})` : value;
      parts.push(`<text x="${(LABEL_W + w + 8).toFixed(1)}" y="${mid}">${xmlEscape(text)}</text>`);
      y += BAR_H + GAP;
    }
    y += 10;
  }
  if (caption !== "") {
    y += 6;
    parts.push(`<text class="caption" x="0" y="${y}">${xmlEscape(caption)}</text>`);
    y += 6;
  }
  const height = y + 8;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
    `viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="modelsync benchmark chart">`,
    `<style>`,
    `text { font: 13px -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; fill: #1f2328; }`,
    `.title { font-weight: 600; font-size: 14px; }`,
    `.caption { font-size: 11px; fill: #656d76; }`,
    `.bar { fill: #8c959f; }`,
    `.accent { fill: #2f81f7; }`,
    `@media (prefers-color-scheme: dark) {`,
    `  text { fill: #e6edf3; } .caption { fill: #8d96a0; } .bar { fill: #6e7681; }`,
    `}`,
    `</style>`,
    ...parts,
    `</svg>`,
    ``,
  ].join("\n");
}

/** "1.50× alone" for a row with a ratio. */
function times(x: Row | undefined, what: string): string | undefined {
  return x?.ratio == null ? undefined : `${x.ratio.toFixed(2)}× ${what}`;
}

/**
 * The README chart's panels: figure 10 (S3 + 100 ms: head-of-line blocking
 * and concurrent flushes, the figures with targets), then figures 1 and 2
 * (the same on a filesystem datastore, context).
 */
export function panelsFromRows(rows: Row[]): Panel[] {
  const panels: Panel[] = [];
  const s3 = rows.filter((r) => r.figure === "10");
  const s3Hol = s3.find((r) => r.name.includes("during"));
  if (s3Hol) {
    const at = s3Hol.name.match(/^(S3 \+ \d+ ms)/)?.[1] ?? "S3";
    const big = s3Hol.name.match(/during an? ([\d.]+ MB)/)?.[1] ?? "big";
    panels.push({
      title: `${at}: a 1-file flush while a ${big} flush of another model runs (median)`,
      bars: [
        { label: "alone", seconds: s3Hol.peerMedian ?? null },
        {
          label: "during, scoped path",
          seconds: s3Hol.median,
          note: times(s3Hol, "alone"),
          accent: true,
        },
      ],
    });
  }
  const s3Scoped = s3.find((r) => r.name.includes("concurrent") && r.name.endsWith("scoped"));
  const s3Global = s3.find((r) => r.name.includes("concurrent") && r.name.includes("global"));
  if (s3Scoped || s3Global) {
    const first = (s3Scoped ?? s3Global)!;
    const title = first.name.match(/^(.*concurrent flushes)/)?.[1] ?? "concurrent flushes";
    panels.push({
      title: `${title}: wall time (median)`,
      bars: [
        { label: "one of them alone", seconds: first.peerMedian ?? null },
        {
          label: "all at once, scoped path",
          seconds: s3Scoped?.median ?? null,
          note: times(s3Scoped, "alone"),
          accent: true,
        },
        {
          label: "all at once, global path",
          seconds: s3Global?.median ?? null,
          note: times(s3Global, "alone"),
        },
      ],
    });
  }
  const hol = rows.filter((r) => r.figure === "1");
  const scoped = hol.find((r) => r.name.endsWith("scoped"));
  const global = hol.find((r) => r.name.endsWith("global"));
  if (scoped || global) {
    const big = (scoped ?? global)!.name.match(/during an? ([\d.]+ MB)/)?.[1] ?? "big";
    panels.push({
      title: `Filesystem (context): a 1-file flush while a ${big} flush runs (median)`,
      bars: [
        { label: "alone", seconds: scoped?.peerMedian ?? global?.peerMedian ?? null },
        {
          label: "during, scoped path",
          seconds: scoped?.median ?? null,
          note: times(scoped, "alone"),
          accent: true,
        },
        {
          label: "during, global path",
          seconds: global?.median ?? null,
          note: times(global, "alone"),
        },
      ],
    });
  }
  const conc = rows.find((r) => r.figure === "2");
  if (conc) {
    const what = conc.name.match(/(\d+ concurrent flushes)/)?.[1] ?? "concurrent flushes";
    panels.push({
      title: `Filesystem (context): ${what}: wall time (median)`,
      bars: [
        {
          label: "scoped path",
          seconds: conc.median,
          note: times(conc, "global"),
          accent: true,
        },
        { label: "global path (--disable-cap scopedSync)", seconds: conc.peerMedian ?? null },
      ],
    });
  }
  return panels;
}
