/** `modelsync init`. @module */
import { Command } from "@commander-js/extra-typings";
import { runInit } from "../src/sync/init.ts";
import type { CliContext } from "./_context.ts";

/** Builds the `init` command. */
export function initCommand(ctx: CliContext) {
  return new Command("init")
    .description("create modelsync.yaml here (or in --repo) and initialise the datastore")
    .option("--datastore <spec>", "datastore: filesystem:/path (also a global option)")
    .action(async (opts) => {
      const flags = { ...ctx.globals(), ...(opts.datastore ? { datastore: opts.datastore } : {}) };
      const r = await runInit({ flags, env: ctx.env, cwd: ctx.cwd, signal: ctx.signal });
      ctx.emit(r, [
        `Initialised ${r.repo} with datastore ${r.datastore.type}:${r.datastore.location}`,
      ]);
    });
}
