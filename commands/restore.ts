/** `modelsync restore MODEL@N`. @module */
import type { Command } from "@commander-js/extra-typings";
import { parseGenerationRef } from "../src/model/ref.ts";
import type { CliContext } from "./_context.ts";

/** Adds the `restore` command. */
export function restoreCommand(parent: Command, ctx: CliContext) {
  return parent.command("restore")
    .description(
      "make the working copy of a model equal to generation N (then push commits it anew)",
    )
    .argument("<model@n>", "model and generation as TYPE/ID@N (see modelsync log)")
    .option(
      "--force",
      "overwrite local changes too, saving them under .modelsync/restore-saved/ first",
    )
    .action(async (target, opts) => {
      const ref = parseGenerationRef(target);
      await ctx.withSession("required", async (s) => {
        const { formatRestore, runRestore } = await import("../src/sync/restore.ts");
        const { requireRepo } = await import("../src/sync/session.ts");
        const r = await runRestore(requireRepo(s), ref, { force: opts.force === true });
        ctx.emit(r, formatRestore(r));
      });
    });
}
