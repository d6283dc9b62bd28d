/** `modelsync pull`. @module */
import { Command, Option } from "@commander-js/extra-typings";
import { formatReports } from "../src/sync/report.ts";
import { type CliContext, parseRefs } from "./_context.ts";
import { logFailures, syncJson } from "./_sync_output.ts";

/** Builds the `pull` command. */
export function pullCommand(ctx: CliContext) {
  return new Command("pull")
    .description("bring remote changes into the working tree (three-way; conflicts exit 4)")
    .argument("[models...]", "models as TYPE/ID (default: every model)")
    .addOption(
      new Option("--theirs", "on conflict, take the datastore's version").conflicts("ours"),
    )
    .addOption(new Option("--ours", "on conflict, keep the local version (push sends it later)"))
    .option("--no-lock", "accepted for compatibility: pull never takes a datastore lock")
    .action(async (models, opts) => {
      const refs = parseRefs(models);
      await ctx.withSession({ requireRepo: true }, async (s) => {
        const { runPull } = await import("../src/sync/run.ts");
        const { requireRepo } = await import("../src/sync/session.ts");
        const r = await runPull(requireRepo(s), {
          models: refs,
          resolution: opts.theirs ? "theirs" : opts.ours ? "ours" : "none",
        });
        ctx.emit(syncJson(r), formatReports(r.models));
        logFailures(r);
        ctx.setExit(r.exitCode);
      });
    });
}
