/** `modelsync push`. @module */
import type { Command } from "@commander-js/extra-typings";
import { type CliContext, parseRefs } from "./_context.ts";
import { logFailures, syncJson, syncLines } from "./_sync_output.ts";

/** Adds the `push` command. */
export function pushCommand(parent: Command, ctx: CliContext) {
  return parent.command("push")
    .description("upload and commit models with local changes (rebases when the datastore moved)")
    .argument("[models...]", "models as TYPE/ID or their folders (default: every changed model)")
    .action(async (models) => {
      const w = await ctx.workspace("required");
      const refs = parseRefs(models, w, ctx.cwd);
      await ctx.withSession("required", async (s) => {
        const { runPush } = await import("../src/sync/run.ts");
        const { requireRepo } = await import("../src/sync/session.ts");
        const r = await runPush(requireRepo(s), {
          models: refs,
          operation: "push",
          allowDelete: s.settings.allowDelete,
        });
        ctx.emit(syncJson(r), syncLines(r, { verbose: s.settings.verbose, paint: ctx.paint() }));
        logFailures(r);
        ctx.setExit(r.exitCode);
      });
    });
}
