/** `modelsync migrate`. @module */
import { Command } from "@commander-js/extra-typings";
import type { CliContext } from "./_context.ts";

/** Builds the `migrate` command. */
export function migrateCommand(ctx: CliContext) {
  return new Command("migrate")
    .description(
      "convert a datastore of format 1 in place to format 2, under the global lock (rerun after an interruption)",
    )
    .action(async () => {
      await ctx.withSession({ requireRepo: false, format1: true }, async (s) => {
        const { formatMigrate, runMigrate } = await import("../src/sync/migrate.ts");
        const r = await runMigrate(s);
        ctx.emit(r, formatMigrate(r));
      });
    });
}
