/** `modelsync lock status` and `modelsync lock release --force`. @module */
import type { Command } from "@commander-js/extra-typings";
import { UsageError } from "../src/errors.ts";
import { type CliContext, parseRefs } from "./_context.ts";

/** Adds the `lock` command group. */
export function lockCommand(parent: Command, ctx: CliContext) {
  const lock = parent.command("lock")
    .description("inspect and release datastore locks (never takes a lock)")
    .action(() => {
      throw new UsageError(`"modelsync lock" needs a subcommand: status, or release --force.`);
    });
  lock.command("status")
    .description(
      "every lock: holder, host, pid, repository, operation, age, ttl left or why it is stale",
    )
    .action(async () => {
      await ctx.withSession("optional", async (s) => {
        const { formatLockStatus, runLockStatus } = await import("../src/sync/lock_admin.ts");
        const r = await runLockStatus(s);
        ctx.emit(r, formatLockStatus(r, { paint: ctx.paint() }));
      });
    });
  lock.command("release")
    .description("force-release the global lock or model locks (nonce-checked)")
    .argument("[models...]", "models as TYPE/ID or their folders")
    .option("--force", "required: you are sure the holder is gone")
    .option("--global", "release the global lock")
    .action(async (models, opts) => {
      const w = await ctx.workspace("optional");
      const refs = parseRefs(models, w, ctx.cwd);
      if (opts.force !== true) {
        throw new UsageError(
          `lock release needs --force: check "modelsync lock status" first, then run "modelsync lock release --force ${
            opts.global ? "--global" : models.join(" ") || "MODEL"
          }".`,
        );
      }
      if (!opts.global && refs.length === 0) {
        throw new UsageError(
          `lock release --force needs --global or at least one MODEL (TYPE/ID).`,
        );
      }
      await ctx.withSession("optional", async (s) => {
        const { runLockRelease } = await import("../src/sync/lock_admin.ts");
        const { exitCode, messages, ...r } = await runLockRelease(s, {
          global: opts.global === true,
          models: refs,
        });
        ctx.emit(r, messages);
        ctx.setExit(exitCode);
      });
    });
  return lock;
}
