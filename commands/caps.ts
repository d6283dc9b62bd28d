/** `modelsync caps`. @module */
import type { Command } from "@commander-js/extra-typings";
import type { CliContext } from "./_context.ts";

/** Adds the `caps` command. */
export function capsCommand(parent: Command, ctx: CliContext) {
  return parent.command("caps")
    .description(
      "show what the datastore can do and which lock path is used; --probe tests it live",
    )
    .option("--probe", "test the declared capabilities against the live datastore")
    .action(async (opts) => {
      await ctx.withSession("optional", async (s) => {
        const { formatCaps, runCaps } = await import("../src/sync/caps.ts");
        const { exitCode, ...r } = await runCaps(s, { probe: opts.probe === true });
        ctx.emit(r, formatCaps({ ...r, exitCode }));
        ctx.setExit(exitCode);
      });
    });
}
