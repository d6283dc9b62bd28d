/**
 * One run of the CLI: the signals that interrupt it (SIGINT, SIGTERM,
 * SIGHUP), the settings resolved once, the whole-run deadline, the log
 * level, the datastore session, the output and the exit code. `main.ts`
 * creates one per process; every command receives it as its
 * {@linkcode CliContext}.
 *
 * @module
 */
import type { CommandUnknownOpts } from "@commander-js/extra-typings";
import { ExitCode, InterruptedError } from "../errors.ts";
import { formatDuration } from "../duration.ts";
import { logger } from "../log.ts";
import type { RepoNeed, Session, Workspace } from "../sync/session.ts";
import { type Env, type Origin, resolveSetting } from "../sync/settings.ts";
import { configureLogging, type Paint, painter, writeOut } from "./output.ts";

/** A result with a JSON schema name. */
export interface Printable {
  schema: string;
}

/** What every command receives. */
export interface CliContext {
  readonly env: Env;
  readonly cwd: string;
  /** Aborted by a signal or the whole-run deadline. */
  readonly signal: AbortSignal;
  /** The repository and settings of this run, resolved once (no datastore opened). */
  workspace(repo: RepoNeed): Promise<Workspace>;
  /** Opens the workspace's datastore, runs `fn`, closes it. */
  withSession<T>(
    repo: RepoNeed,
    fn: (s: Session) => Promise<T>,
    opts?: { format1?: boolean },
  ): Promise<T>;
  /**
   * Prints a result: one JSON document with --json; else the human lines,
   * unless -q.
   */
  emit(result: Printable, human: readonly string[]): void;
  /** Colours for stdout (plain unless a terminal with colour allowed). */
  paint(): Paint;
  /** Sets the process exit code (the first non-zero one wins). */
  setExit(code: number): void;
}

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/** The run. */
export class CliRun implements CliContext {
  readonly env: Env;
  readonly cwd: string;
  readonly #controller = new AbortController();
  readonly #handlers = new Map<Deno.Signal, () => void>();
  #command: CommandUnknownOpts | undefined;
  #workspace: Promise<Workspace> | undefined;
  #settled: Workspace | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #exitCode: number = ExitCode.ok;
  readonly #calls = new Map<string, number>();

  constructor(opts: { env: Env; cwd: string }) {
    this.env = opts.env;
    this.cwd = opts.cwd;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The exit code set by the command (0 when none). */
  get exitCode(): number {
    return this.#exitCode;
  }

  /** Listens for SIGINT, SIGTERM and SIGHUP: the first aborts the run, the second exits at once. */
  installSignals(): void {
    for (const name of SIGNALS) {
      const handler = () => {
        if (this.#controller.signal.aborted) Deno.exit(ExitCode.interrupted);
        this.#controller.abort(
          new InterruptedError(
            `Interrupted by ${name}; locks were released. Rerun the command to finish.`,
          ),
        );
      };
      try {
        Deno.addSignalListener(name, handler);
        this.#handlers.set(name, handler);
      } catch {
        // A signal this platform does not have (SIGHUP on Windows).
      }
    }
  }

  /** Stops listening and disarms the deadline. */
  dispose(): void {
    for (const [name, handler] of this.#handlers) Deno.removeSignalListener(name, handler);
    this.#handlers.clear();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }

  /** The command about to run (commander's preAction hook). */
  setCommand(cmd: CommandUnknownOpts): void {
    this.#command = cmd;
  }

  #flags(): Readonly<Record<string, unknown>> {
    return this.#command?.optsWithGlobals() ?? {};
  }

  workspace(repo: RepoNeed): Promise<Workspace> {
    this.#workspace ??= this.#prepare(repo);
    return this.#workspace;
  }

  async #prepare(repo: RepoNeed): Promise<Workspace> {
    // Loaded here, not at start-up: `--help` and `--version` need none of
    // the configuration, provider and sync modules.
    const { prepareWorkspace } = await import("../sync/session.ts");
    const w = await prepareWorkspace({
      flags: this.#flags(),
      env: this.env,
      cwd: this.cwd,
      signal: this.signal,
      repo,
    });
    await configureLogging(w.settings.quiet ? "error" : w.settings.verbose ? "debug" : "info");
    for (const warning of w.config?.warnings ?? []) logger("repo").warn("{warning}", { warning });
    this.#armDeadline(w.settings.timeoutMs, w.origins.timeoutMs);
    this.#settled = w;
    return w;
  }

  #armDeadline(ms: number | undefined, origin: Origin): void {
    if (ms === undefined) return;
    const named = origin.source === "file" ? `timeout: in modelsync.yaml` : origin.name;
    this.#timer = setTimeout(() => {
      this.#controller.abort(
        new InterruptedError(
          `Stopped after ${formatDuration(ms)} (${named}); locks were released. ` +
            `Rerun to finish, or allow more time.`,
        ),
      );
    }, ms);
  }

  async withSession<T>(
    repo: RepoNeed,
    fn: (s: Session) => Promise<T>,
    opts: { format1?: boolean } = {},
  ): Promise<T> {
    const w = await this.workspace(repo);
    const { openSession } = await import("../sync/session.ts");
    const session = await openSession(w, {
      onCall: (op) => this.#calls.set(op, (this.#calls.get(op) ?? 0) + 1),
      format1: opts.format1 === true,
    });
    try {
      return await fn(session);
    } finally {
      await session.close();
      this.#reportCalls();
    }
  }

  /** -v: one line per kind of datastore request, with its count. */
  #reportCalls(): void {
    const log = logger("provider");
    const kinds = [...this.#calls].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (kinds.length === 0) return;
    for (const [op, n] of kinds) log.debug(`datastore requests: ${op} ${n}`);
  }

  /** --json, from the settings once resolved, else from the flag and environment alone. */
  wantsJson(): boolean {
    if (this.#settled !== undefined) return this.#settled.settings.json;
    try {
      return resolveSetting("json", { flags: this.#flags(), env: this.env }).value === true;
    } catch {
      return false;
    }
  }

  /** -v, as {@linkcode CliRun.wantsJson}. */
  wantsVerbose(): boolean {
    if (this.#settled !== undefined) return this.#settled.settings.verbose;
    try {
      return resolveSetting("verbose", { flags: this.#flags(), env: this.env }).value === true;
    } catch {
      return false;
    }
  }

  #quiet(): boolean {
    if (this.#settled !== undefined) return this.#settled.settings.quiet;
    try {
      return resolveSetting("quiet", { flags: this.#flags(), env: this.env }).value === true;
    } catch {
      return false;
    }
  }

  emit(result: Printable, human: readonly string[]): void {
    if (this.wantsJson()) {
      writeOut(JSON.stringify(result, null, 2) + "\n");
      return;
    }
    if (this.#quiet() || human.length === 0) return;
    writeOut(human.join("\n") + "\n");
  }

  paint(): Paint {
    const allowed = this.#settled?.settings.color ??
      (this.env.NO_COLOR === undefined || this.env.NO_COLOR === "");
    return painter(allowed && !this.wantsJson() && Deno.stdout.isTerminal());
  }

  setExit(code: number): void {
    if (this.#exitCode === ExitCode.ok) this.#exitCode = code;
  }
}
