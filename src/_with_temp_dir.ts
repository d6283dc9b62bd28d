/**
 * Test helper: runs `fn` with a fresh temporary directory and removes it
 * afterwards, whatever happens.
 *
 * @example
 * ```ts
 * import { withTempDir } from "./_with_temp_dir.ts";
 * await withTempDir(async (dir) => {
 *   await Deno.writeTextFile(`${dir}/a.txt`, "hi");
 * });
 * ```
 * @module
 */

/** Runs `fn` in a new temp directory that is removed afterwards. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "modelsync-unit-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
