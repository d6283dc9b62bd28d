/**
 * The README chart: hand-built SVG bars for figure 1 (one-file flush alone,
 * during a big flush on the scoped path, on the global path) and figure 2
 * (8 concurrent flushes, scoped and global), labelled with seconds and ratios.
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

/** The README chart's panels from the rows of figures 1 and 2. */
export function panelsFromRows(rows: Row[]): Panel[] {
  const panels: Panel[] = [];
  const hol = rows.filter((r) => r.figure === "1");
  const scoped = hol.find((r) => r.name.endsWith("scoped"));
  const global = hol.find((r) => r.name.endsWith("global"));
  if (scoped || global) {
    const big = (scoped ?? global)!.name.match(/during an? ([\d.]+ MB)/)?.[1] ?? "big";
    const r = (x?: Row) => x?.ratio == null ? undefined : `${x.ratio.toFixed(2)}× alone`;
    panels.push({
      title: `Head-of-line blocking: a 1-file flush while a ${big} flush runs (median)`,
      bars: [
        { label: "alone", seconds: scoped?.peerMedian ?? global?.peerMedian ?? null },
        {
          label: "during, scoped path",
          seconds: scoped?.median ?? null,
          note: r(scoped),
          accent: true,
        },
        { label: "during, global path", seconds: global?.median ?? null, note: r(global) },
      ],
    });
  }
  const conc = rows.find((r) => r.figure === "2");
  if (conc) {
    panels.push({
      title: `${conc.name.replace(/ \(.*/, "")}: wall time (median)`,
      bars: [
        {
          label: "scoped path",
          seconds: conc.median,
          note: conc.ratio == null ? undefined : `${conc.ratio.toFixed(2)}× global`,
          accent: true,
        },
        { label: "global path (--disable-cap scopedSync)", seconds: conc.peerMedian ?? null },
      ],
    });
  }
  return panels;
}
