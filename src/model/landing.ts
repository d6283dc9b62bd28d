/**
 * The landing journal: which remote states a sync is about to put into the
 * working tree, written before the first file lands and removed once the new
 * base is written. A sync killed in between leaves it behind, and the next
 * sync treats a local file that equals its journal entry as modelsync's own
 * write, not as a user's change — so a rerun completes instead of reporting
 * false conflicts on half-landed files (SPEC §7).
 *
 * Layout: `.modelsync/landing/TYPE/ID.json`, written atomically. An
 * unreadable journal is ignored (at worst a rerun reports a conflict; it
 * never loses data).
 *
 * @example
 * ```ts
 * import { readLanding, removeLanding, writeLanding } from "./landing.ts";
 * const repo = await Deno.makeTempDir();
 * const m = { type: "vpc", id: "m1" };
 * await writeLanding(repo, m, new Map([["a.txt", { sha256: "0".repeat(64), size: 1, executable: false }], ["gone", null]]));
 * console.log((await readLanding(repo, m))?.get("gone")); // null
 * await removeLanding(repo, m);
 * ```
 * @module
 */
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { syncablePathProblem } from "./path.ts";
import type { ModelRef } from "./ref.ts";

/** A landed state: content and mode (a link: its target), or null for a file the sync removes. */
export type LandingState = {
  sha256: string;
  size: number;
  executable: boolean;
  link?: string;
} | null;

const SHA256 = /^[0-9a-f]{64}$/;

/** Path of a model's landing journal. */
export function landingPath(repoDir: string, model: ModelRef): string {
  return join(repoDir, ".modelsync", "landing", ...model.type.split("/"), `${model.id}.json`);
}

/** Reads a model's journal; null when there is none (or it is unreadable). */
export async function readLanding(
  repoDir: string,
  model: ModelRef,
): Promise<Map<string, LandingState> | null> {
  let raw: unknown;
  try {
    raw = JSON.parse(await Deno.readTextFile(landingPath(repoDir, model)));
  } catch {
    return null;
  }
  const entries = (raw as { entries?: unknown })?.entries;
  if (!Array.isArray(entries)) return null;
  const out = new Map<string, LandingState>();
  for (const e of entries) {
    if (!Array.isArray(e) || typeof e[0] !== "string" || syncablePathProblem(e[0]) !== undefined) {
      return null;
    }
    const st = e[1] as Record<string, unknown> | null;
    if (st === null) out.set(e[0], null);
    else if (
      typeof st === "object" && typeof st.sha256 === "string" && SHA256.test(st.sha256) &&
      typeof st.size === "number" && typeof st.executable === "boolean" &&
      (st.link === undefined || typeof st.link === "string")
    ) {
      const { sha256, size, executable } = st;
      out.set(
        e[0],
        st.link === undefined ? { sha256, size, executable } : {
          sha256,
          size,
          executable,
          link: st.link as string,
        },
      );
    } else return null;
  }
  return out;
}

/**
 * Records the states about to land, merged over any journal an earlier,
 * interrupted sync left (newer entries win). Atomic: tmp + rename.
 */
export async function writeLanding(
  repoDir: string,
  model: ModelRef,
  states: ReadonlyMap<string, LandingState>,
): Promise<void> {
  const merged = new Map(await readLanding(repoDir, model) ?? []);
  for (const [p, st] of states) merged.set(p, st);
  const path = landingPath(repoDir, model);
  const dir = join(path, "..");
  await Deno.mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${model.id}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    await Deno.writeTextFile(tmp, JSON.stringify({ format: 1, entries: [...merged] }));
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/** Removes a model's journal (after its new base is written); missing is fine. */
export async function removeLanding(repoDir: string, model: ModelRef): Promise<void> {
  await Deno.remove(landingPath(repoDir, model)).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  });
}
