/**
 * Transfer progress on stderr: a bar on a TTY once work has run for a second,
 * otherwise one line every few seconds. Silent with `-q`.
 *
 * @module
 */
import type cliProgress from "cli-progress";
import process from "node:process";
import { formatBytes } from "./format.ts";

/** Counts files and bytes moved, and shows them. */
export class Progress {
  readonly #label: string;
  readonly #enabled: boolean;
  readonly #tty: boolean;
  readonly #intervalMs: number;
  #files = 0;
  #totalFiles = 0;
  #bytes = 0;
  #totalBytes = 0;
  #startedAt = Date.now();
  #timer: ReturnType<typeof setInterval> | undefined;
  #bar: cliProgress.SingleBar | undefined;
  /** Loaded on first use on a TTY only: most runs (CI, pipes, `-q`) never draw a bar. */
  #lib: typeof cliProgress | undefined;

  constructor(label: string, opts: { enabled: boolean; intervalMs?: number }) {
    this.#label = label;
    this.#enabled = opts.enabled;
    this.#tty = Deno.stderr.isTerminal();
    this.#intervalMs = opts.intervalMs ?? 5000;
  }

  /** Starts the clock; output begins only after the first second. */
  start(): void {
    if (!this.#enabled || this.#timer !== undefined) return;
    this.#startedAt = Date.now();
    if (this.#tty) {
      import("cli-progress").then((m) => this.#lib = m.default, () => {});
    }
    const timer = setInterval(() => this.#render(), this.#tty ? 200 : this.#intervalMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /** More work was found. */
  addTotal(files: number, bytes: number): void {
    this.#totalFiles += files;
    this.#totalBytes += bytes;
  }

  /** Work was done. */
  advance(files: number, bytes: number): void {
    this.#files += files;
    this.#bytes += bytes;
  }

  /** Stops output and clears the bar. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#bar?.stop();
    this.#bar = undefined;
  }

  #render(): void {
    if (Date.now() - this.#startedAt < 1000 || this.#totalFiles === 0) return;
    if (this.#tty) {
      const lib = this.#lib;
      if (lib === undefined) return; // still loading
      if (this.#bar === undefined) {
        this.#bar = new lib.SingleBar({
          stream: process.stderr,
          format: `${this.#label} [{bar}] {percentage}% | {value}/{total} files | {moved}`,
          hideCursor: false,
          clearOnComplete: true,
        }, lib.Presets.shades_classic);
        this.#bar.start(this.#totalFiles, this.#files, { moved: formatBytes(this.#bytes) });
      }
      this.#bar.setTotal(this.#totalFiles);
      this.#bar.update(this.#files, { moved: formatBytes(this.#bytes) });
    } else {
      const line = `modelsync: ${this.#label}: ${this.#files}/${this.#totalFiles} files, ` +
        `${formatBytes(this.#bytes)}/${formatBytes(this.#totalBytes)}\n`;
      Deno.stderr.writeSync(new TextEncoder().encode(line));
    }
  }
}
