/**
 * Small formatting helpers for human output.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./format.ts";
 * console.log(formatBytes(1536)); // 1.5 KiB
 * ```
 * @module
 */
import { printable } from "../provider/stale.ts";

/** Bytes as B, KiB, MiB, GiB with one decimal. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/**
 * Paths for a one-line message: control characters escaped (a file name may
 * hold a newline or a terminal escape), joined with ", ".
 */
export function listPaths(paths: readonly string[]): string {
  return paths.map((p) => printable(p, Infinity)).join(", ");
}

/** Pads to a width for aligned columns. */
export function pad(s: string, width: number): string {
  return s.length >= width ? s : s + " ".repeat(width - s.length);
}
