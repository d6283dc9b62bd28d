/** `modelsync status`. @module */
import type { Command } from "@commander-js/extra-typings";
import { type CliContext, parseRefs } from "./_context.ts";

/** Adds the `status` command. */
export function statusCommand(parent: Command, ctx: CliContext) {
  return parent.command("status")
    .description(
      "show local changes per model, file by file (offline); with --remote, what the datastore has",
    )
    .argument("[models...]", "models as TYPE/ID or their folders (default: every model)")
    .option("--remote", "also compare with the datastore (one listing; needs the datastore)")
    .option("--exit-code", "exit 10 when anything changed (locally, or remotely with --remote)")
    .action(async (models, opts) => {
      const w = await ctx.workspace("required");
      const refs = parseRefs(models, w, ctx.cwd);
      const { formatStatus, runStatus, statusExitCode } = await import("../src/sync/status.ts");
      const { requireRepo } = await import("../src/sync/session.ts");
      const r = opts.remote
        ? await ctx.withSession(
          "required",
          (s) => runStatus(requireRepo(s), { models: refs, remote: s.provider }),
        )
        : await runStatus(requireRepo(w), { models: refs });
      ctx.emit(r, formatStatus(r, { paint: ctx.paint() }));
      if (opts.exitCode) ctx.setExit(statusExitCode(r));
    });
}
