/**
 * Transfer progress on stderr, in bytes and files with rate and ETA. Bytes
 * are counted as they stream (see {@linkcode Progress.track}), so the
 * figures move while one large file is in flight. Modes (`--progress`):
 * `bar` on a terminal (once the work has run for a second), `plain` (a line
 * every 5 s), `json` (a JSON line every second and one at the end, for CI),
 * `none`. `auto` is `bar` on a terminal, else `plain`, and `none` with -q.
 *
 * @example
 * ```ts
 * import { Progress } from "./progress.ts";
 * const p = new Progress("push", { mode: "none" });
 * p.start();
 * p.addTotal(1, 100);
 * const t = p.track(100);
 * t.bytes(40); // 40 of 100 bytes so far
 * t.done();
 * p.stop();
 * ```
 * @module
 */
import type cliProgress from "cli-progress";
import process from "node:process";
import { formatDuration } from "../duration.ts";
import { formatBytes } from "./format.ts";
import type { ProgressMode, Settings } from "./settings.ts";

/** How progress is drawn once `auto` is decided. */
export type ProgressOutput = Exclude<ProgressMode, "auto">;

/** The mode a run uses: `auto` becomes bar (terminal), plain, or none with -q. */
export function progressOutput(settings: Pick<Settings, "progress" | "quiet">): ProgressOutput {
  if (settings.progress !== "auto") return settings.progress;
  if (settings.quiet) return "none";
  return Deno.stderr.isTerminal() ? "bar" : "plain";
}

/** One JSON line of `--progress json`. */
export interface ProgressLine {
  schema: "modelsync.progress/1";
  operation: string;
  files: number;
  totalFiles: number;
  bytes: number;
  totalBytes: number;
  /** Over the last few seconds; 0 before anything moved. */
  bytesPerSecond: number;
  /** null while the rate is unknown. */
  etaSeconds: number | null;
  elapsedMs: number;
  done: boolean;
}

/** One transfer being counted: bytes as they stream, then done. */
export interface Tracked {
  /** `n` more bytes of this file moved (counted up to its size). */
  bytes(n: number): void;
  /** The file is complete: its remaining bytes and the file are counted. */
  done(): void;
}

const RATE_WINDOW_MS = 10_000;
const encoder = new TextEncoder();

/** Counts files and bytes moved, and shows them. */
export class Progress {
  readonly #label: string;
  readonly #mode: ProgressOutput;
  readonly #intervalMs: number;
  #files = 0;
  #totalFiles = 0;
  #bytes = 0;
  #totalBytes = 0;
  #startedAt = Date.now();
  #samples: { at: number; bytes: number }[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #bar: cliProgress.SingleBar | undefined;
  /** Loaded on first use on a TTY only: most runs (CI, pipes, `-q`) never draw a bar. */
  #lib: typeof cliProgress | undefined;

  constructor(label: string, opts: { mode: ProgressOutput; intervalMs?: number }) {
    this.#label = label;
    this.#mode = opts.mode;
    this.#intervalMs = opts.intervalMs ??
      (opts.mode === "bar" ? 200 : opts.mode === "json" ? 1000 : 5000);
  }

  /** Starts the clock and the output. */
  start(): void {
    if (this.#mode === "none" || this.#timer !== undefined) return;
    this.#startedAt = Date.now();
    this.#samples = [{ at: this.#startedAt, bytes: this.#bytes }];
    if (this.#mode === "bar") {
      import("cli-progress").then((m) => this.#lib = m.default, () => {});
    }
    const timer = setInterval(() => this.#render(), this.#intervalMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /** More work was found. */
  addTotal(files: number, bytes: number): void {
    this.#totalFiles += files;
    this.#totalBytes += bytes;
  }

  /** Work was done: whole files and their bytes. */
  advance(files: number, bytes: number): void {
    this.#files += files;
    this.#bytes += bytes;
  }

  /**
   * Counts one file of `size` bytes as it streams: `bytes(n)` as chunks
   * move (a retry that streams again is capped at `size`), `done()` at the
   * end credits what was not reported and the file itself.
   */
  track(size: number): Tracked {
    let counted = 0;
    let finished = false;
    return {
      bytes: (n) => {
        const add = Math.max(0, Math.min(n, size - counted));
        counted += add;
        this.#bytes += add;
      },
      done: () => {
        if (finished) return;
        finished = true;
        this.#bytes += size - counted;
        counted = size;
        this.#files += 1;
      },
    };
  }

  /** The figures now, as a JSON line reports them. */
  snapshot(done = false): ProgressLine {
    const now = Date.now();
    this.#samples.push({ at: now, bytes: this.#bytes });
    while (this.#samples.length > 2 && now - this.#samples[0].at > RATE_WINDOW_MS) {
      this.#samples.shift();
    }
    const first = this.#samples[0];
    const span = now - first.at;
    const rate = span > 0 ? Math.round(((this.#bytes - first.bytes) * 1000) / span) : 0;
    const left = Math.max(0, this.#totalBytes - this.#bytes);
    return {
      schema: "modelsync.progress/1",
      operation: this.#label,
      files: this.#files,
      totalFiles: this.#totalFiles,
      bytes: this.#bytes,
      totalBytes: this.#totalBytes,
      bytesPerSecond: rate,
      etaSeconds: done ? 0 : rate > 0 ? Math.ceil(left / rate) : null,
      elapsedMs: now - this.#startedAt,
      done,
    };
  }

  /** Stops output: clears the bar; in json mode, writes a last line with `done: true`. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    const wasRunning = this.#timer !== undefined;
    this.#timer = undefined;
    this.#bar?.stop();
    this.#bar = undefined;
    if (wasRunning && this.#mode === "json" && this.#totalFiles > 0) {
      this.#write(JSON.stringify(this.snapshot(true)));
    }
  }

  #write(line: string): void {
    try {
      Deno.stderr.writeSync(encoder.encode(line + "\n"));
    } catch {
      // stderr went away: progress is not worth failing for
    }
  }

  #render(): void {
    if (this.#totalFiles === 0) return;
    const s = this.snapshot();
    if (this.#mode === "json") return this.#write(JSON.stringify(s));
    if (Date.now() - this.#startedAt < 1000) return;
    const rate = s.bytesPerSecond > 0 ? `${formatBytes(s.bytesPerSecond)}/s` : "-";
    const eta = s.etaSeconds === null ? "-" : formatDuration(s.etaSeconds * 1000);
    if (this.#mode === "plain") {
      return this.#write(
        `modelsync: ${this.#label}: ${s.files}/${s.totalFiles} files, ` +
          `${formatBytes(s.bytes)}/${formatBytes(s.totalBytes)}, ${rate}, ETA ${eta}`,
      );
    }
    const lib = this.#lib;
    if (lib === undefined) return; // still loading
    const payload = {
      files: `${s.files}/${s.totalFiles} files`,
      moved: `${formatBytes(s.bytes)}/${formatBytes(s.totalBytes)}`,
      rate,
      eta,
    };
    // The bar measures bytes (so it moves within a large file); files when all are empty.
    const [value, total] = s.totalBytes > 0 ? [s.bytes, s.totalBytes] : [s.files, s.totalFiles];
    if (this.#bar === undefined) {
      this.#bar = new lib.SingleBar({
        stream: process.stderr,
        format: `${this.#label} [{bar}] {percentage}% | {files} | {moved} | {rate} | ETA {eta}`,
        hideCursor: false,
        clearOnComplete: true,
        barsize: 24,
      }, lib.Presets.shades_classic);
      this.#bar.start(total, value, payload);
    }
    this.#bar.setTotal(total);
    this.#bar.update(value, payload);
  }
}
