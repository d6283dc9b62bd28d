/**
 * modelsync: keeps local model repositories in sync with a shared datastore.
 *
 * This file parses arguments, configures logging, and holds the one error
 * boundary that maps errors to exit codes (SPEC §6).
 *
 * @module
 */
import { Command, CommanderError, Option } from "@commander-js/extra-typings";
import { configure, type LogLevel, type LogRecord, reset } from "@logtape/logtape";
import process from "node:process";
import {
  classifyError,
  ExitCode,
  InterruptedError,
  ModelsyncError,
  UsageError,
} from "./src/errors.ts";
import { type GlobalFlags, resolveSettings } from "./src/sync/settings.ts";
import { formatDuration } from "./src/duration.ts";
import type { CliContext, Printable } from "./commands/_context.ts";
import { capsCommand } from "./commands/caps.ts";
import { flushCommand } from "./commands/flush.ts";
import { gcCommand } from "./commands/gc.ts";
import { initCommand } from "./commands/init.ts";
import { lockCommand } from "./commands/lock.ts";
import { logCommand } from "./commands/log.ts";
import { migrateCommand } from "./commands/migrate.ts";
import { pullCommand } from "./commands/pull.ts";
import { pushCommand } from "./commands/push.ts";
import { restoreCommand } from "./commands/restore.ts";
import { statusCommand } from "./commands/status.ts";
import { verifyCommand } from "./commands/verify.ts";

const encoder = new TextEncoder();
/** Writes all of `text`; a reader that went away (`| head`) is not an error. */
function writeAll(stream: typeof Deno.stdout | typeof Deno.stderr, text: string): void {
  const bytes = encoder.encode(text);
  try {
    for (let off = 0; off < bytes.length;) off += stream.writeSync(bytes.subarray(off));
  } catch (err) {
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
}
const writeOut = (text: string) => writeAll(Deno.stdout, text);
const writeErr = (line: string) => writeAll(Deno.stderr, line.endsWith("\n") ? line : line + "\n");

function renderMessage(record: LogRecord): string {
  return record.message.map((
    part,
    i,
  ) => (i % 2 === 0 ? String(part) : typeof part === "string" ? part : JSON.stringify(part)))
    .join("");
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

async function setUpLogging(
  flags: GlobalFlags,
  env: Record<string, string | undefined>,
): Promise<void> {
  const s = resolveSettings({ flags, env });
  const lowestLevel: LogLevel = s.quiet ? "error" : s.verbose ? "debug" : "info";
  await configure({
    reset: true,
    sinks: { stderr: stderrSink },
    loggers: [
      { category: ["modelsync"], lowestLevel, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Runs the CLI with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const env = Deno.env.toObject();
  const controller = new AbortController();
  let exitCode: number = ExitCode.ok;
  let verbose = false;
  const onSignal = (name: "SIGINT" | "SIGTERM") => () => {
    if (controller.signal.aborted) Deno.exit(ExitCode.interrupted);
    controller.abort(
      new InterruptedError(
        `Interrupted by ${name}; locks were released. Rerun the command to finish.`,
      ),
    );
  };
  const handlers = { SIGINT: onSignal("SIGINT"), SIGTERM: onSignal("SIGTERM") };
  for (const [sig, h] of Object.entries(handlers)) Deno.addSignalListener(sig as Deno.Signal, h);

  const program = new Command()
    .name("modelsync")
    .description("Keep local model repositories in sync with a shared datastore.")
    .version("0.1.0")
    .option(
      "--repo <dir>",
      "repository directory (default: nearest parent with modelsync.yaml) [MODELSYNC_REPO]",
    )
    .option("--datastore <spec>", "datastore, e.g. filesystem:/path [MODELSYNC_DATASTORE]")
    .option("--json", "print one JSON document on stdout [MODELSYNC_JSON]")
    .option("-q, --quiet", "only errors on stderr [MODELSYNC_QUIET]")
    .option("-v, --verbose", "debug logs on stderr [MODELSYNC_VERBOSE]")
    .option(
      "--lock-timeout <dur>",
      "how long to wait for a lock (default 60s) [MODELSYNC_LOCK_TIMEOUT]",
    )
    .option("--lock-ttl <dur>", "lease time of a lock (default 30s) [MODELSYNC_LOCK_TTL]")
    .option("--timeout <dur>", "deadline for the whole run [MODELSYNC_TIMEOUT]")
    .option(
      "--call-timeout <dur>",
      "deadline for each datastore call (default 30s) [MODELSYNC_CALL_TIMEOUT]",
    )
    .option(
      "--jobs <n>",
      "parallel transfers (default: the datastore's maxConcurrency) [MODELSYNC_JOBS]",
    )
    .addOption(
      new Option(
        "--disable-cap <name>",
        "force a capability off, e.g. scopedSync (repeatable) [MODELSYNC_DISABLE_CAP]",
      )
        .argParser(collect),
    )
    .option(
      "--holder <name>",
      "name recorded in locks and commits (default $USER) [MODELSYNC_HOLDER]",
    )
    .option("--no-color", "no colours [NO_COLOR]")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => writeOut(s),
      writeErr: (s) => writeAll(Deno.stderr, s),
      outputError: () => {},
    });

  const globals = (): GlobalFlags => program.opts() as GlobalFlags;
  const ctx: CliContext = {
    env,
    cwd: Deno.cwd(),
    signal: controller.signal,
    globals,
    async withSession(opts, fn) {
      const s0 = resolveSettings({ flags: globals(), env });
      let timer: ReturnType<typeof setTimeout> | undefined;
      if (s0.timeoutMs !== undefined) {
        timer = setTimeout(() =>
          controller.abort(
            new InterruptedError(
              `Stopped after --timeout ${
                formatDuration(s0.timeoutMs!)
              }; locks were released. Rerun to finish.`,
            ),
          ), s0.timeoutMs);
      }
      try {
        // Loaded here, not at start-up: `--help` and `--version` need none of
        // the configuration, provider and sync modules.
        const { openSession } = await import("./src/sync/session.ts");
        const session = await openSession({
          flags: globals(),
          env,
          cwd: Deno.cwd(),
          signal: controller.signal,
          requireRepo: opts.requireRepo,
          format1: opts.format1 === true,
        });
        try {
          return await fn(session);
        } finally {
          await session.close();
        }
      } finally {
        if (timer !== undefined) clearTimeout(timer);
      }
    },
    emit(result: Printable, human: string[]) {
      const json = wantsJson(globals(), env);
      const text = json ? JSON.stringify(result, null, 2) : human.join("\n");
      if (text.length > 0) writeOut(text + "\n");
    },
    setExit(code: number) {
      if (exitCode === ExitCode.ok) exitCode = code;
    },
  };

  program.hook("preAction", async () => {
    verbose = globals().verbose === true || env.MODELSYNC_VERBOSE === "1";
    await setUpLogging(globals(), env);
  });
  for (
    const build of [
      initCommand,
      statusCommand,
      pullCommand,
      pushCommand,
      flushCommand,
      capsCommand,
      lockCommand,
      logCommand,
      restoreCommand,
      verifyCommand,
      gcCommand,
      migrateCommand,
    ]
  ) {
    program.addCommand(build(ctx));
  }
  const inherit = (cmd: Command<unknown[], Record<string, unknown>, Record<string, unknown>>) => {
    for (const sub of cmd.commands) {
      sub.exitOverride().configureOutput({
        writeOut: (s) => writeOut(s),
        writeErr: (s) => writeAll(Deno.stderr, s),
        outputError: () => {},
      });
      inherit(sub as Command<unknown[], Record<string, unknown>, Record<string, unknown>>);
    }
  };
  inherit(
    program as unknown as Command<unknown[], Record<string, unknown>, Record<string, unknown>>,
  );

  try {
    await program.parseAsync(args, { from: "user" });
    return exitCode;
  } catch (err) {
    const code = reportError(err, verbose);
    if (code !== ExitCode.ok && wantsJson(program.opts() as GlobalFlags, env)) {
      // --json promises one document on stdout, also when the command failed.
      ctx.emit(errorDocument(classifyError(err), code), []);
    }
    return code;
  } finally {
    for (const [sig, h] of Object.entries(handlers)) {
      Deno.removeSignalListener(sig as Deno.Signal, h);
    }
    await reset();
  }
}

function wantsJson(flags: GlobalFlags, env: Record<string, string | undefined>): boolean {
  return flags.json ?? /^(1|true|yes|on)$/i.test(env.MODELSYNC_JSON ?? "");
}

/** The JSON document of a failed command: `modelsync.error/1`. */
function errorDocument(err: unknown, exitCode: number) {
  const message = err instanceof CommanderError
    ? err.message.replace(/^error: /, "").split("\n")[0]
    : err instanceof Error
    ? err.message.split("\n")[0]
    : String(err);
  const code = err instanceof ModelsyncError
    ? err.code
    : err instanceof CommanderError
    ? "usage"
    : "unexpected";
  return { schema: "modelsync.error/1", error: { code, message, exitCode } };
}

function reportError(raw: unknown, verbose: boolean): number {
  const err = classifyError(raw);
  if (err instanceof CommanderError) {
    if (
      err.code === "commander.helpDisplayed" || err.code === "commander.version" ||
      err.code === "commander.help"
    ) {
      return ExitCode.ok;
    }
    const msg = err.message.replace(/^error: /, "").split("\n")[0];
    writeErr(`modelsync: error: ${new UsageError(msg).message}. Run "modelsync --help".`);
    return ExitCode.usage;
  }
  if (err instanceof ModelsyncError) {
    writeErr(`modelsync: error: ${err.message.split("\n")[0]}`);
    if (verbose && err.cause) {
      writeErr(`modelsync: debug: cause: ${String((err.cause as Error)?.stack ?? err.cause)}`);
    }
    return err.exitCode;
  }
  const e = err as Error;
  writeErr(
    `modelsync: error: unexpected failure: ${e?.message?.split("\n")[0] ?? String(err)}. ` +
      `Rerun with -v for details and report it.`,
  );
  if (verbose) writeErr(String(e?.stack ?? err));
  return ExitCode.unexpected;
}

if (import.meta.main) {
  const code = await main(Deno.args);
  process.exitCode = code;
  Deno.exit(code);
}
