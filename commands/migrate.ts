/** `modelsync migrate`. @module */
import type { Command } from "@commander-js/extra-typings";
import type { CliContext } from "./_context.ts";

/** Adds the `migrate` command. */
export function migrateCommand(parent: Command, ctx: CliContext) {
  return parent.command("migrate")
    .description(
      "convert a datastore of format 1 in place to format 2, under the global lock (rerun after an interruption)",
    )
    .action(async () => {
      await ctx.withSession("optional", async (s) => {
        const { formatMigrate, runMigrate } = await import("../src/sync/migrate.ts");
        const r = await runMigrate(s);
        ctx.emit(r, formatMigrate(r));
      }, { format1: true });
    });
}
