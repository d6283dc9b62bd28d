/** `modelsync version`. @module */
import type { Command } from "@commander-js/extra-typings";
import { versionLines, versions } from "../src/cli/version.ts";
import type { CliContext } from "./_context.ts";

/** Adds the `version` command. */
export function versionCommand(parent: Command, ctx: CliContext) {
  return parent.command("version")
    .description("print the versions of modelsync, Deno and the datastore format")
    .action(() => {
      const v = versions();
      ctx.emit(v, versionLines(v));
    });
}
