/** `modelsync push`. @module */
import { Command } from "@commander-js/extra-typings";
import { formatReports } from "../src/sync/report.ts";
import { type CliContext, parseRefs } from "./_context.ts";
import { logFailures, syncJson } from "./_sync_output.ts";

/** Builds the `push` command. */
export function pushCommand(ctx: CliContext) {
  return new Command("push")
    .description("upload and commit models with local changes (rebases when the datastore moved)")
    .argument("[models...]", "models as TYPE/ID (default: every model with local changes)")
    .option(
      "--allow-delete",
      "also delete in the datastore a model deleted here that is not named (MODELSYNC_ALLOW_DELETE)",
    )
    .action(async (models, opts) => {
      const refs = parseRefs(models);
      await ctx.withSession({ requireRepo: true }, async (s) => {
        const { runPush } = await import("../src/sync/run.ts");
        const { requireRepo } = await import("../src/sync/session.ts");
        const { resolveAllowDelete } = await import("../src/sync/delete_guard.ts");
        const repo = requireRepo(s);
        const r = await runPush(repo, {
          models: refs,
          operation: "push",
          allowDelete: resolveAllowDelete({
            flag: opts.allowDelete,
            env: ctx.env,
            config: repo.config,
          }),
        });
        ctx.emit(syncJson(r), formatReports(r.models));
        logFailures(r);
        ctx.setExit(r.exitCode);
      });
    });
}
