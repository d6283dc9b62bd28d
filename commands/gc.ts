/** `modelsync gc`. @module */
import { type Command, Option } from "@commander-js/extra-typings";
import { parseDuration } from "../src/duration.ts";
import { type CliContext, parseCount } from "./_context.ts";

/** Adds the `gc` command. */
export function gcCommand(parent: Command, ctx: CliContext) {
  return parent.command("gc")
    .description(
      "remove history no policy keeps and blobs no kept generation names, under the global lock",
    )
    .option(
      "--grace <dur>",
      "leave blobs and uncommitted records younger than this (default 24h)",
    )
    .addOption(
      new Option("--keep <n>", "keep the N newest generations of each model").conflicts(
        "keepWithin",
      ),
    )
    .option("--keep-within <dur>", "keep the generations committed within DUR")
    .option("--dry-run", "remove nothing and take no lock: list what gc would remove now")
    .action(async (opts) => {
      const { DEFAULT_GRACE_MS, formatGc, runGc } = await import("../src/sync/gc.ts");
      const graceMs = opts.grace === undefined
        ? DEFAULT_GRACE_MS
        : parseDuration(opts.grace, "--grace");
      const keep = opts.keep === undefined ? undefined : parseCount(opts.keep, "--keep");
      const keepWithinMs = opts.keepWithin === undefined
        ? undefined
        : parseDuration(opts.keepWithin, "--keep-within");
      await ctx.withSession("optional", async (s) => {
        const { exitCode, ...r } = await runGc(s, {
          graceMs,
          ...(keep === undefined ? {} : { keep }),
          ...(keepWithinMs === undefined ? {} : { keepWithinMs }),
          dryRun: opts.dryRun === true,
        });
        ctx.emit(r, formatGc({ ...r, exitCode }));
        ctx.setExit(exitCode);
      });
    });
}
