/** `modelsync log MODEL`. @module */
import { Command } from "@commander-js/extra-typings";
import { parseModelRef } from "../src/model/ref.ts";
import { type CliContext, parseCount } from "./_context.ts";

/** Builds the `log` command. */
export function logCommand(ctx: CliContext) {
  return new Command("log")
    .description("list a model's generations, newest first: time, who, files, bytes, what changed")
    .argument("<model>", "model as TYPE/ID")
    .option("-n, --max <n>", "show at most N generations")
    .action(async (model, opts) => {
      const ref = parseModelRef(model);
      const max = opts.max === undefined ? undefined : parseCount(opts.max, "--max");
      await ctx.withSession({ requireRepo: false }, async (s) => {
        const { formatLog, runLog } = await import("../src/sync/log.ts");
        const { exitCode, ...r } = await runLog(s, ref, max === undefined ? {} : { max });
        ctx.emit(r, formatLog({ ...r, exitCode }));
        ctx.setExit(exitCode);
      });
    });
}
