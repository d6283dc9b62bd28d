/** `modelsync verify`. @module */
import type { Command } from "@commander-js/extra-typings";
import { logger } from "../src/log.ts";
import { type CliContext, parseRefs } from "./_context.ts";

/** Adds the `verify` command. */
export function verifyCommand(parent: Command, ctx: CliContext) {
  return parent.command("verify")
    .description(
      "check that heads and history name only stored blobs; --read-data also checks their hashes",
    )
    .argument("[models...]", "models as TYPE/ID (default: every model in the datastore)")
    .option("--read-data", "download every blob named and check its SHA-256 and size")
    .action(async (models, opts) => {
      const w = await ctx.workspace("optional");
      const refs = parseRefs(models, w, ctx.cwd);
      await ctx.withSession("optional", async (s) => {
        const { formatVerify, runVerify } = await import("../src/sync/verify.ts");
        const { exitCode, ...r } = await runVerify(s, {
          models: refs,
          readData: opts.readData === true,
        });
        ctx.emit(r, formatVerify({ ...r, exitCode }));
        if (r.problems.length > 0) {
          const n = r.problems.length;
          logger("cli").error(
            `verify found ${n} ${n === 1 ? "problem" : "problems"} in the datastore (listed on ` +
              `stdout); each names its remedy.`,
          );
        }
        ctx.setExit(exitCode);
      });
    });
}
