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
