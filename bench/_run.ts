/**
 * Process running and timing for the benchmark: every subprocess has a
 * timeout, its wall time is measured with `performance.now()` around spawn and
 * exit, and its peak memory is taken from GNU time (`/usr/bin/time -f %M`)
 * when present, else from `VmHWM` in `/proc/PID/status` polled while it runs.
 *
 * @example
 * ```ts
 * import { run } from "./_run.ts";
 * const r = await run(["git", "--version"], { cwd: "/tmp" });
 * console.log(r.ms, r.stdout);
 * ```
 * @module
 */
import { join } from "node:path";

/** Root of the project (the directory holding `main.ts`). */
export const ROOT: string = decodeURIComponent(new URL("..", import.meta.url).pathname);
/** The CLI entry point, run the way a user runs it: `deno run -A main.ts`. */
export const MAIN: string = join(ROOT, "main.ts");
/** GNU time, when installed. */
export const GNU_TIME = "/usr/bin/time";

/** A finished process. */
export interface Run {
  cmd: string[];
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, in milliseconds. */
  ms: number;
  /** Peak resident set size in KiB, when measured. */
  maxRssKiB?: number;
}

/** How to run one process. */
export interface RunOptions {
  cwd: string;
  env?: Record<string, string>;
  /** Killed (and the run fails) after this many milliseconds; default 10 minutes. */
  timeoutMs?: number;
  /** Measure peak memory. */
  memory?: boolean;
  /** Exit codes accepted; default [0]. */
  okCodes?: number[];
}

let gnuTime: boolean | undefined;

/** True when GNU time is installed (used for peak memory). */
export async function hasGnuTime(): Promise<boolean> {
  if (gnuTime === undefined) {
    gnuTime = await Deno.stat(GNU_TIME).then((s) => s.isFile, () => false);
  }
  return gnuTime;
}

/** How peak memory is measured on this machine, for the report. */
export async function memoryMethod(): Promise<string> {
  return await hasGnuTime()
    ? "GNU time -f %M (peak RSS of the process)"
    : "VmHWM from /proc/PID/status, polled every 20 ms";
}

/** The environment for every process: ours without MODELSYNC_* and AWS_CA_BUNDLE, plus NO_COLOR. */
export function benchEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    // The local S3 server is plain http: a CA bundle only gets in the way.
    if (!k.startsWith("MODELSYNC_") && k !== "AWS_CA_BUNDLE") env[k] = v;
  }
  return { ...env, NO_COLOR: "1", RUST_BACKTRACE: "0", ...extra };
}

/** A process running in the background. */
export class Proc {
  readonly pid: number;
  readonly done: Promise<Run>;
  #child: Deno.ChildProcess;
  #exited = false;

  constructor(cmd: string[], opts: RunOptions) {
    const memFile = opts.memory && gnuTime ? `${Deno.makeTempFileSync()}` : undefined;
    const argv = memFile ? [GNU_TIME, "-o", memFile, "-f", "%M", ...cmd] : cmd;
    const start = performance.now();
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      cwd: opts.cwd,
      env: benchEnv(opts.env),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.pid = child.pid;
    const timeoutMs = opts.timeoutMs ?? 600_000;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.kill();
    }, timeoutMs);
    let hwm = 0;
    const poll = opts.memory && !memFile
      ? setInterval(() => (hwm = Math.max(hwm, readHwm(this.pid))), 20)
      : undefined;
    this.done = (async () => {
      try {
        const out = await child.output();
        const ms = performance.now() - start;
        this.#exited = true;
        const run: Run = {
          cmd,
          code: out.code,
          stdout: new TextDecoder().decode(out.stdout),
          stderr: new TextDecoder().decode(out.stderr),
          ms,
        };
        if (memFile) {
          const text = await Deno.readTextFile(memFile).catch(() => "");
          await Deno.remove(memFile).catch(() => {});
          const kib = Number(text.trim().split("\n").pop());
          if (Number.isFinite(kib) && kib > 0) run.maxRssKiB = kib;
        } else if (opts.memory && hwm > 0) run.maxRssKiB = hwm;
        if (timedOut) {
          throw new BenchError(`timed out after ${timeoutMs} ms`, run);
        }
        if (!(opts.okCodes ?? [0]).includes(run.code)) {
          throw new BenchError(`exited ${run.code}`, run);
        }
        return run;
      } finally {
        clearTimeout(timer);
        if (poll !== undefined) clearInterval(poll);
      }
    })();
  }

  /** True once the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Sends SIGKILL unless it has exited. */
  kill(): void {
    if (this.#exited) return;
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

function readHwm(pid: number): number {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/VmHWM:\s+(\d+)/);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** A failed run: the message carries the command, exit code and stderr. */
export class BenchError extends Error {
  constructor(what: string, readonly run?: Run) {
    super(
      run
        ? `${run.cmd.join(" ")} ${what}\n--- stdout ---\n${run.stdout.slice(-2000)}\n` +
          `--- stderr ---\n${run.stderr.slice(-4000)}`
        : what,
    );
  }
}

/** Runs a command and waits for it; throws BenchError on a bad exit code or timeout. */
export function run(cmd: string[], opts: RunOptions): Promise<Run> {
  return new Proc(cmd, opts).done;
}

/** The modelsync command line for `args`. */
export function cliCmd(args: string[]): string[] {
  return [Deno.execPath(), "run", "-A", "--quiet", MAIN, ...args];
}

/** Runs modelsync in `cwd` (a repository). */
export function cli(args: string[], opts: RunOptions): Promise<Run> {
  return run(cliCmd(args), opts);
}

/** Starts modelsync in the background. */
export function spawnCli(args: string[], opts: RunOptions): Proc {
  return new Proc(cliCmd(args), opts);
}

/** Parses a run's stdout as one JSON object, or throws with the run's output. */
export function jsonOf(r: Run): Record<string, unknown> {
  try {
    return JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    throw new BenchError("printed no JSON document", r);
  }
}

/**
 * Checks a push/flush/pull `--json` report: exit 0 and the expected summary
 * counts (e.g. `{ pushed: 0 }` for a no-op). Throws with the run's output.
 */
export function expectSummary(r: Run, want: Record<string, number>): Record<string, unknown> {
  const doc = jsonOf(r);
  const summary = doc.summary as Record<string, number> | undefined;
  for (const [k, v] of Object.entries(want)) {
    if (summary?.[k] !== v) {
      throw new BenchError(`reported ${k}=${summary?.[k]} where ${v} was expected`, r);
    }
  }
  return doc;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `cond` until true; throws naming `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new BenchError(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** The first line of `cmd --version`, or null when the tool is missing. */
export async function toolVersion(cmd: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) return null;
    return new TextDecoder().decode(out.stdout).split("\n")[0].trim();
  } catch {
    return null;
  }
}
