/**
 * What every command file receives from main.ts: the environment, the run's
 * abort signal, the global flags, and helpers to open a session and print.
 *
 * @module
 */
import type { GlobalFlags } from "../src/sync/settings.ts";
import type { Session } from "../src/sync/session.ts";
import { type ModelRef, parseModelRef } from "../src/model/ref.ts";
import { UsageError } from "../src/errors.ts";

/** A result with a JSON schema name; keys in `hidden` are not printed. */
export interface Printable {
  schema: string;
}

/** Shared by every command. */
export interface CliContext {
  env: Record<string, string | undefined>;
  cwd: string;
  signal: AbortSignal;
  /** The global flags as parsed. */
  globals(): GlobalFlags;
  /** Opens the datastore session, runs `fn`, closes it. */
  withSession<T>(
    opts: { requireRepo: boolean; format1?: boolean },
    fn: (s: Session) => Promise<T>,
  ): Promise<T>;
  /** Prints a result: one JSON document with --json, else the human lines. */
  emit(result: Printable, human: string[]): void;
  /** Sets the process exit code (the highest-priority one wins). */
  setExit(code: number): void;
}

/** Parses model ref arguments; throws UsageError (exit 2) on a bad one. */
export function parseRefs(args: readonly string[]): ModelRef[] {
  return args.map((a) => parseModelRef(a));
}

/** Parses a whole number of at least 1 given to `flag`; throws UsageError (exit 2) otherwise. */
export function parseCount(text: string, flag: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(text.trim())) {
    throw new UsageError(
      `Invalid ${flag} ${JSON.stringify(text)}: use a whole number of 1 or more.`,
    );
  }
  return Number(text.trim());
}
