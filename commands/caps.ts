/** `modelsync caps`. @module */
import { Command } from "@commander-js/extra-typings";
import type { CliContext } from "./_context.ts";

/** Builds the `caps` command. */
export function capsCommand(ctx: CliContext) {
  return new Command("caps")
    .description(
      "show what the datastore can do and which lock path is used; --probe tests it live",
    )
    .option("--probe", "test the declared capabilities against the live datastore")
    .action(async (opts) => {
      await ctx.withSession({ requireRepo: false }, async (s) => {
        const { formatCaps, runCaps } = await import("../src/sync/caps.ts");
        const { exitCode, ...r } = await runCaps(s, { probe: opts.probe === true });
        ctx.emit(r, formatCaps({ ...r, exitCode }));
        ctx.setExit(exitCode);
      });
    });
}
