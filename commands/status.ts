/** `modelsync status`. @module */
import { Command } from "@commander-js/extra-typings";
import { type CliContext, parseRefs } from "./_context.ts";

/** Builds the `status` command. */
export function statusCommand(ctx: CliContext) {
  return new Command("status")
    .description("show local changes per model; with --remote, whether the datastore is ahead")
    .argument("[models...]", "models as TYPE/ID (default: every model)")
    .option("--remote", "also compare with the datastore (one listing)")
    .action(async (models, opts) => {
      const refs = parseRefs(models);
      await ctx.withSession({ requireRepo: true }, async (s) => {
        const { formatStatus, runStatus } = await import("../src/sync/status.ts");
        const { requireRepo } = await import("../src/sync/session.ts");
        const r = await runStatus(requireRepo(s), { models: refs, remote: opts.remote === true });
        ctx.emit(r, formatStatus(r));
      });
    });
}
