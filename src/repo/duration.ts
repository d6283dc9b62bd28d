/**
 * Durations on the command line and in `modelsync.yaml`: `500ms`, `30s`,
 * `1.5s`, `2m`, `2h`, `1h30m`; a bare number is seconds.
 *
 * @example
 * ```ts
 * import { formatDuration, parseDuration } from "./duration.ts";
 * const ms = parseDuration("1.5s", "--lock-timeout"); // 1500
 * console.log(formatDuration(ms)); // 1.5s
 * ```
 * @module
 */
import { UsageError } from "../errors.ts";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const NUMBER = /^(?:\d+(?:\.\d*)?|\.\d+)$/;
const PART = /(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)/y;

/**
 * Parses a duration into milliseconds (rounded to a whole millisecond).
 * Throws a {@linkcode UsageError} (exit 2) naming `what` when `text` is not
 * a duration.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./duration.ts";
 * parseDuration("2m", "--timeout"); // 120000
 * parseDuration("45", "--timeout"); // 45000 (bare number = seconds)
 * ```
 */
export function parseDuration(text: string, what: string): number {
  const ms = tryParse(text.trim());
  if (ms === undefined) {
    throw new UsageError(
      `Invalid ${what} ${JSON.stringify(text)}: use a duration like 30s, 2m or 500ms.`,
    );
  }
  return ms;
}

function tryParse(text: string): number | undefined {
  if (text === "") return undefined;
  if (NUMBER.test(text)) return finite(Number(text) * 1000);
  let total = 0;
  let pos = 0;
  PART.lastIndex = 0;
  while (pos < text.length) {
    PART.lastIndex = pos;
    const m = PART.exec(text);
    if (m === null) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]];
    pos = PART.lastIndex;
  }
  return finite(total);
}

function finite(ms: number): number | undefined {
  return Number.isFinite(ms) && ms <= Number.MAX_SAFE_INTEGER ? Math.round(ms) : undefined;
}

/**
 * Formats milliseconds for messages: under a second as `250ms`, whole
 * multiples of a minute from two minutes on as `2m` (or `2h`), anything else
 * in seconds (`60s`, `1.5s`). {@linkcode parseDuration} reads it back.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./duration.ts";
 * formatDuration(60_000); // "60s"
 * formatDuration(120_000); // "2m"
 * ```
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const n = Math.round(ms);
  if (Math.abs(n) < 1000) return `${n}ms`;
  if (Math.abs(n) >= 7_200_000 && n % 3_600_000 === 0) return `${n / 3_600_000}h`;
  if (Math.abs(n) >= 120_000 && n % 60_000 === 0) return `${n / 60_000}m`;
  return `${Number((n / 1000).toFixed(3))}s`;
}
