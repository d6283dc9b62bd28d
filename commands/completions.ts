/** `modelsync completions bash|zsh|fish`, and the hidden helper its scripts call. @module */
import { Argument, type Command } from "@commander-js/extra-typings";
import { writeOut } from "../src/cli/output.ts";
import type { CliContext } from "./_context.ts";

/** Adds the `completions` command. */
export function completionsCommand(parent: Command, ctx: CliContext) {
  parent.command("completions")
    .description("print a shell completion script: commands, options and model refs")
    .addArgument(new Argument("<shell>", "the shell").choices(["bash", "zsh", "fish"]))
    .action(async (shell) => {
      const { completionScript } = await import("../src/cli/completions.ts");
      writeOut(completionScript(shell, parent));
    });
  // Called by the scripts on Tab: prints model refs, one a line; never fails.
  parent.command("__complete", { hidden: true })
    .argument("<what>")
    .argument("[prefix]")
    .action(async (what, prefix) => {
      if (what !== "models") return;
      try {
        const w = await ctx.workspace("required");
        const { completeModels } = await import("../src/cli/completions.ts");
        const refs = await completeModels(w, prefix ?? "");
        if (refs.length > 0) writeOut(refs.join("\n") + "\n");
      } catch {
        // No repository, or a broken one: nothing to offer.
      }
    });
}
