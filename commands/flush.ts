/** `modelsync flush`: the CI command. @module */
import type { Command } from "@commander-js/extra-typings";
import type { CliContext } from "./_context.ts";
import { logFailures, syncJson, syncLines } from "./_sync_output.ts";

/** Adds the `flush` command. */
export function flushCommand(parent: Command, ctx: CliContext) {
  return parent.command("flush")
    .description(
      "push every model with pending changes, keep going past failures, report each (for CI)",
    )
    .action(async () => {
      await ctx.withSession("required", async (s) => {
        const { runPush } = await import("../src/sync/run.ts");
        const { requireRepo } = await import("../src/sync/session.ts");
        const r = await runPush(requireRepo(s), {
          operation: "flush",
          allowDelete: s.settings.allowDelete,
        });
        ctx.emit(syncJson(r), syncLines(r, { verbose: s.settings.verbose, paint: ctx.paint() }));
        logFailures(r);
        ctx.setExit(r.exitCode);
      });
    });
}
