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
import { UsageError } from "./errors.ts";

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
 * Formats a duration for messages, short and rounded: `300ms`, `1s`,
 * `1.5s`, `60s`, `2m30s`, `10m`, `3h15m`, `42d7h`. The output parses back
 * with {@linkcode parseDuration} (to the rounding shown).
 *
 * @example
 * ```ts
 * import { formatDuration } from "./duration.ts";
 * formatDuration(150_000); // "2m30s"
 * ```
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 120_000) return `${Math.round(ms / 100) / 10}s`;
  const total = Math.round(ms / 1_000);
  if (total < 2 * 3_600) {
    const m = Math.floor(total / 60);
    const s = total % 60;
    return s === 0 ? `${m}m` : `${m}m${s}s`;
  }
  const minutes = Math.round(total / 60);
  if (minutes < 2 * 1_440) {
    const h = Math.floor(minutes / 60);
    const m = minutes % 60;
    return m === 0 ? `${h}h` : `${h}h${m}m`;
  }
  const hours = Math.round(minutes / 60);
  const d = Math.floor(hours / 24);
  const h = hours % 24;
  return h === 0 ? `${d}d` : `${d}d${h}h`;
}
