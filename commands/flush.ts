/** `modelsync flush`: the CI command. @module */
import { Command } from "@commander-js/extra-typings";
import { formatReports } from "../src/sync/report.ts";
import { runPush } from "../src/sync/run.ts";
import { requireRepo } from "../src/sync/session.ts";
import type { CliContext } from "./_context.ts";
import { logFailures, summaryLine, syncJson } from "./_sync_output.ts";

/** Builds the `flush` command. */
export function flushCommand(ctx: CliContext) {
  return new Command("flush")
    .description(
      "push every model with pending changes, keep going past failures, report each (for CI)",
    )
    .action(async () => {
      await ctx.withSession({ requireRepo: true }, async (s) => {
        const r = await runPush(requireRepo(s), { operation: "flush" });
        ctx.emit(syncJson(r), [...formatReports(r.models), summaryLine(r)]);
        logFailures(r);
        ctx.setExit(r.exitCode);
      });
    });
}
