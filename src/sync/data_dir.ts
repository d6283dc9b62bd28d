/**
 * The data folder must exist before a command reads it as the local state:
 * a missing `models/` (removed, or a typo in `dataDir`) would otherwise look
 * like every model deleted, and a push would commit a tombstone for each.
 *
 * @example
 * ```ts
 * import { requireDataDir } from "./data_dir.ts";
 * const repo = await Deno.makeTempDir();
 * await requireDataDir(repo, "models").catch((e) => console.log(e.exitCode)); // 2
 * await Deno.remove(repo, { recursive: true });
 * ```
 * @module
 */
import { join } from "node:path";
import { UsageError } from "../errors.ts";

/** True when `repoDir/dataDir` exists (whatever it is). */
export async function dataDirExists(repoDir: string, dataDir: string): Promise<boolean> {
  try {
    await Deno.lstat(join(repoDir, dataDir));
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
      return false;
    }
    throw err;
  }
}

/**
 * Throws a UsageError (exit 2) naming the folder and the remedy when the
 * data folder does not exist. `status`, `push` and `flush` call it first;
 * `pull` calls it when this repository has synced a model before.
 */
export async function requireDataDir(repoDir: string, dataDir: string): Promise<void> {
  if (await dataDirExists(repoDir, dataDir)) return;
  throw new UsageError(
    `The data folder ${join(repoDir, dataDir)} does not exist, so every model in it would look ` +
      `deleted; nothing was read or pushed. Fix dataDir in modelsync.yaml if it names the wrong ` +
      `folder, or create it ("mkdir ${dataDir}"); "modelsync pull --theirs MODEL" then brings ` +
      `back a model deleted here.`,
  );
}
