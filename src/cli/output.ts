/**
 * The CLI's two streams and its log sink: results on stdout, logs, warnings
 * and progress on stderr (each log line prefixed `modelsync: `), and colours
 * for a terminal.
 *
 * @example
 * ```ts
 * import { painter } from "./output.ts";
 * const paint = painter(false);
 * console.log(paint.status("pushed", "pushed")); // pushed (no colour)
 * ```
 * @module
 */
import { configure, type LogLevel, type LogRecord } from "@logtape/logtape";

const encoder = new TextEncoder();

/** Writes all of `text`; a reader that went away (`| head`) is not an error. */
export function writeAll(stream: typeof Deno.stdout | typeof Deno.stderr, text: string): void {
  const bytes = encoder.encode(text);
  try {
    for (let off = 0; off < bytes.length;) off += stream.writeSync(bytes.subarray(off));
  } catch (err) {
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
}

/** Writes to stdout as is. */
export function writeOut(text: string): void {
  writeAll(Deno.stdout, text);
}

/** Writes one line (or more) to stderr, ending it with a newline. */
export function writeErr(line: string): void {
  writeAll(Deno.stderr, line.endsWith("\n") ? line : line + "\n");
}

function renderMessage(record: LogRecord): string {
  return record.message.map((part, i) =>
    i % 2 === 0 ? String(part) : typeof part === "string" ? part : JSON.stringify(part)
  ).join("");
}

function stderrSink(record: LogRecord): void {
  const prefix = record.level === "warning"
    ? "modelsync: warning: "
    : record.level === "error" || record.level === "fatal"
    ? "modelsync: error: "
    : record.level === "debug" || record.level === "trace"
    ? `modelsync: debug: [${record.category.slice(1).join(".")}] `
    : "modelsync: ";
  writeErr(prefix + renderMessage(record));
}

/** Routes every `["modelsync", …]` log to stderr from `level` up. */
export async function configureLogging(level: LogLevel): Promise<void> {
  await configure({
    reset: true,
    sinks: { stderr: stderrSink },
    loggers: [
      { category: ["modelsync"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** Colours for human output. */
export interface Paint {
  /** Colours `text` by the kind of a status word (pushed, conflict, A, D, …). */
  status(status: string, text: string): string;
  /** Dims `text`. */
  dim(text: string): string;
}

const GREEN = "\x1b[32m";
const RED = "\x1b[31m";
const YELLOW = "\x1b[33m";
const DIM = "\x1b[2m";
const RESET = "\x1b[0m";

/** Statuses that are warnings rather than failures, or changes waiting to be synced. */
const YELLOW_STATUSES = new Set(["lock-timeout", "lease-lost", "interrupted", "M", "ahead"]);
const GREEN_STATUSES = new Set(["pushed", "pulled", "deleted", "A"]);
const RED_STATUSES = new Set(["conflict", "failed", "D", "STALE", "corrupt"]);

/**
 * Colours when `enabled` (a terminal, no `NO_COLOR`, no `--no-color`),
 * otherwise the text unchanged. A status it does not know is left plain.
 */
export function painter(enabled: boolean): Paint {
  if (!enabled) return { status: (_s, t) => t, dim: (t) => t };
  return {
    status(status, text) {
      const c = GREEN_STATUSES.has(status)
        ? GREEN
        : RED_STATUSES.has(status)
        ? RED
        : YELLOW_STATUSES.has(status)
        ? YELLOW
        : "";
      return c === "" ? text : `${c}${text}${RESET}`;
    },
    dim: (t) => `${DIM}${t}${RESET}`,
  };
}
