/**
 * modelsync: keeps local model repositories in sync with a shared datastore.
 *
 * This file parses arguments and holds the one error boundary that maps
 * errors to exit codes (SPEC §6). The run itself (signals, settings,
 * deadline, logging, sessions, output) lives in `src/cli/lifecycle.ts`.
 *
 * @module
 */
import { Command, CommanderError } from "@commander-js/extra-typings";
import { reset } from "@logtape/logtape";
import process from "node:process";
import { classifyError, ExitCode, ModelsyncError } from "./src/errors.ts";
import { addHelpSections, addSettingOptions } from "./src/cli/help.ts";
import { CliRun } from "./src/cli/lifecycle.ts";
import { writeAll, writeErr, writeOut } from "./src/cli/output.ts";
import { versionText } from "./src/cli/version.ts";
import { printable } from "./src/provider/stale.ts";
import { capsCommand } from "./commands/caps.ts";
import { completionsCommand } from "./commands/completions.ts";
import { configCommand } from "./commands/config.ts";
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
import { versionCommand } from "./commands/version.ts";

/** The program with every command; commands inherit its settings through `.command()`. */
export function buildProgram(run: CliRun): Command {
  const program = new Command()
    .name("modelsync")
    .description("Keep local model repositories in sync with a shared datastore.")
    .version(
      versionText(),
      "-V, --version",
      "print the versions of modelsync, Deno and the datastore format",
    )
    .showSuggestionAfterError(true)
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .exitOverride()
    .configureOutput({
      writeOut: (s) => writeOut(s),
      writeErr: (s) => writeAll(Deno.stderr, s),
      outputError: () => {},
    });
  for (
    const add of [
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
      configCommand,
      completionsCommand,
      versionCommand,
      migrateCommand,
    ]
  ) add(program, run);
  addSettingOptions(program);
  addHelpSections(program);
  program.hook("preAction", (_program, action) => run.setCommand(action));
  return program;
}

/** Runs the CLI with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const run = new CliRun({ env: Deno.env.toObject(), cwd: Deno.cwd() });
  run.installSignals();
  const program = buildProgram(run);
  try {
    await program.parseAsync(args, { from: "user" });
    return run.exitCode;
  } catch (err) {
    const code = reportError(err, run.wantsVerbose());
    if (code !== ExitCode.ok && run.wantsJson()) {
      // --json promises one document on stdout, also when the command failed.
      run.emit(errorDocument(classifyError(err), code), []);
    }
    return code;
  } finally {
    run.dispose();
    await reset();
  }
}

/**
 * The first line of an error message, fit for a terminal: messages echo
 * input (a ref, a path, a key), and a control character in it (DEL, a C1
 * escape, a line separator) is shown escaped, never sent raw.
 */
function terminalLine(message: string): string {
  return printable(message.split("\n")[0], Infinity);
}

/** The one-line message of a commander error, its "Did you mean …?" kept. */
function commanderMessage(err: CommanderError): string {
  return err.message.replace(/^error: /, "").split("\n").map((l) => l.trim()).filter((l) =>
    l !== ""
  ).join(" ");
}

/** The JSON document of a failed command: `modelsync.error/1`. */
function errorDocument(err: unknown, exitCode: number) {
  const message = err instanceof CommanderError
    ? commanderMessage(err)
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
    if (err.code === "commander.helpDisplayed" || err.code === "commander.version") {
      return ExitCode.ok;
    }
    // No command (or a group without its subcommand): commander printed the help on stderr.
    if (err.code === "commander.help") return ExitCode.usage;
    const msg = commanderMessage(err).replace(/\.$/, "");
    writeErr(`modelsync: error: ${msg}. Run "modelsync --help".`);
    return ExitCode.usage;
  }
  if (err instanceof ModelsyncError) {
    writeErr(`modelsync: error: ${terminalLine(err.message)}`);
    if (verbose && err.cause) {
      writeErr(`modelsync: debug: cause: ${String((err.cause as Error)?.stack ?? err.cause)}`);
    }
    return err.exitCode;
  }
  const e = err as Error;
  writeErr(
    `modelsync: error: unexpected failure: ${terminalLine(e?.message ?? String(err))}. ` +
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
