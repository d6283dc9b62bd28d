/** `modelsync log MODEL`. @module */
import type { Command } from "@commander-js/extra-typings";
import { type CliContext, parseCount, parseRefs } from "./_context.ts";

/** Adds the `log` command. */
export function logCommand(parent: Command, ctx: CliContext) {
  return parent.command("log")
    .description("list a model's generations, newest first: time, who, files, bytes, what changed")
    .argument("<model>", "model as TYPE/ID or its folder")
    .option("-n, --max <n>", "show at most N generations")
    .action(async (model, opts) => {
      const w = await ctx.workspace("optional");
      const [ref] = parseRefs([model], w, ctx.cwd);
      const max = opts.max === undefined ? undefined : parseCount(opts.max, "--max");
      await ctx.withSession("optional", async (s) => {
        const { formatLog, runLog } = await import("../src/sync/log.ts");
        const { exitCode, ...r } = await runLog(s, ref!, max === undefined ? {} : { max });
        ctx.emit(r, formatLog({ ...r, exitCode }));
        ctx.setExit(exitCode);
      });
    });
}
