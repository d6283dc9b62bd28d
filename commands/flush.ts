/** `modelsync flush`: the CI command. @module */
import { Command } from "@commander-js/extra-typings";
import { formatReports } from "../src/sync/report.ts";
import type { CliContext } from "./_context.ts";
import { logFailures, summaryLine, syncJson } from "./_sync_output.ts";

/** Builds the `flush` command. */
export function flushCommand(ctx: CliContext) {
  return new Command("flush")
    .description(
      "push every model with pending changes, keep going past failures, report each (for CI)",
    )
    .option(
      "--allow-delete",
      "also delete in the datastore every model deleted here (MODELSYNC_ALLOW_DELETE)",
    )
    .action(async (opts) => {
      await ctx.withSession({ requireRepo: true }, async (s) => {
        const { runPush } = await import("../src/sync/run.ts");
        const { requireRepo } = await import("../src/sync/session.ts");
        const { resolveAllowDelete } = await import("../src/sync/delete_guard.ts");
        const repo = requireRepo(s);
        const r = await runPush(repo, {
          operation: "flush",
          allowDelete: resolveAllowDelete({
            flag: opts.allowDelete,
            env: ctx.env,
            config: repo.config,
          }),
        });
        ctx.emit(syncJson(r), [...formatReports(r.models), summaryLine(r)]);
        logFailures(r);
        ctx.setExit(r.exitCode);
      });
    });
}
