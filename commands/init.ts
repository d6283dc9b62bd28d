/** `modelsync init`. @module */
import { Command } from "@commander-js/extra-typings";
import type { CliContext } from "./_context.ts";

/** Builds the `init` command. */
export function initCommand(ctx: CliContext) {
  return new Command("init")
    .description("create modelsync.yaml here (or in --repo) and initialise the datastore")
    .option(
      "--datastore <spec>",
      "datastore: filesystem:/path or s3://bucket/prefix (also a global option)",
    )
    .action(async (opts) => {
      const flags = { ...ctx.globals(), ...(opts.datastore ? { datastore: opts.datastore } : {}) };
      const { runInit } = await import("../src/sync/init.ts");
      const r = await runInit({ flags, env: ctx.env, cwd: ctx.cwd, signal: ctx.signal });
      // A URL location (s3://…) names its type already; a path does not.
      const { type, location } = r.datastore;
      const where = location.includes("://") ? location : `${type}:${location}`;
      ctx.emit(r, [`Initialised ${r.repo} with datastore ${where}`]);
    });
}
