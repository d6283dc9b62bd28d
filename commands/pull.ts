/** `modelsync pull`. @module */
import { type Command, Option } from "@commander-js/extra-typings";
import { type CliContext, parseRefs } from "./_context.ts";
import { logFailures, syncJson, syncLines } from "./_sync_output.ts";

/** Adds the `pull` command. */
export function pullCommand(parent: Command, ctx: CliContext) {
  return parent.command("pull")
    .description("bring remote changes into the working tree (three-way; conflicts exit 4)")
    .argument(
      "[models...]",
      "models as TYPE/ID or their folders (default: every model, or those matching models: in modelsync.yaml)",
    )
    .addOption(
      new Option("--theirs", "on conflict, take the datastore's version").conflicts("ours"),
    )
    .addOption(new Option("--ours", "on conflict, keep the local version (push sends it later)"))
    .option("--no-lock", "accepted for compatibility: pull never takes a datastore lock")
    .action(async (models, opts) => {
      const w = await ctx.workspace("required");
      const refs = parseRefs(models, w, ctx.cwd);
      await ctx.withSession("required", async (s) => {
        const { runPull } = await import("../src/sync/run.ts");
        const { requireRepo } = await import("../src/sync/session.ts");
        const r = await runPull(requireRepo(s), {
          models: refs,
          resolution: opts.theirs ? "theirs" : opts.ours ? "ours" : "none",
        });
        ctx.emit(syncJson(r), syncLines(r, { verbose: s.settings.verbose, paint: ctx.paint() }));
        logFailures(r);
        ctx.setExit(r.exitCode);
      });
    });
}
