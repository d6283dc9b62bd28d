/** `modelsync config show`. @module */
import type { Command } from "@commander-js/extra-typings";
import { UsageError } from "../src/errors.ts";
import type { CliContext } from "./_context.ts";

/** Adds the `config` command group. */
export function configCommand(parent: Command, ctx: CliContext) {
  const config = parent.command("config")
    .description("the settings in effect")
    .action(() => {
      throw new UsageError(`"modelsync config" needs a subcommand: show.`);
    });
  config.command("show")
    .description("every setting in effect and where it came from (flag, env, file, default)")
    .action(async () => {
      const w = await ctx.workspace("optional");
      const { configShow, formatConfigShow } = await import("../src/sync/config_show.ts");
      const r = configShow(w);
      ctx.emit(r, formatConfigShow(r));
    });
  return config;
}
