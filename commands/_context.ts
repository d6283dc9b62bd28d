/**
 * What every command file receives: the run's {@linkcode CliContext}
 * (settings resolved once, sessions, output), and a helper for model
 * arguments.
 *
 * @module
 */
import type { Workspace } from "../src/sync/session.ts";
import type { ModelRef } from "../src/model/ref.ts";
import { parseRefArgs } from "../src/repo/ref_arg.ts";
import { UsageError } from "../src/errors.ts";

export type { CliContext, Printable } from "../src/cli/lifecycle.ts";

/**
 * Parses model arguments, refs or folders (`models/vision/resnet/`);
 * throws UsageError (exit 2) on a bad one.
 */
export function parseRefs(args: readonly string[], w: Workspace, cwd: string): ModelRef[] {
  return parseRefArgs(args, {
    cwd,
    ...(w.repoDir === undefined ? {} : { repoDir: w.repoDir }),
    ...(w.config === undefined ? {} : { dataDir: w.config.dataDir }),
  });
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
