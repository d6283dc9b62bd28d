/** `modelsync init`. @module */
import type { Command } from "@commander-js/extra-typings";
import type { CliContext } from "./_context.ts";

/** Adds the `init` command. */
export function initCommand(parent: Command, ctx: CliContext) {
  return parent.command("init")
    .description(
      "create modelsync.yaml here (or in --repo), initialise the datastore (--datastore SPEC)",
    )
    .option("--no-gitignore", "do not add the data folder and .modelsync/ to .gitignore")
    .action(async (opts) => {
      const w = await ctx.workspace("none");
      const { formatInit, runInit } = await import("../src/sync/init.ts");
      const r = await runInit(w, { cwd: ctx.cwd, gitignore: opts.gitignore !== false });
      ctx.emit(r, formatInit(r));
    });
}
