/**
 * Committing a model's new state at a chosen generation. The provider
 * contract commits generation `expected + 1` by compare-and-swap on
 * `expected`; to go higher (above a base the datastore lost, so that no
 * repository sees the model's generation go backwards) the same files are
 * committed generation by generation: `expected + 1`, then `expected + 2`
 * on top of it, up to the target. Each step is an ordinary compare-and-swap,
 * so the safety argument of every provider holds unchanged, and a reader
 * at any moment sees a complete manifest of the new state.
 *
 * @module
 */
import { ConflictError } from "../errors.ts";
import { logger } from "../log.ts";
import { type FileEntry, makeManifest, type Manifest } from "../model/manifest.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import type { Lease } from "../lock/mod.ts";
import type { RepoSession } from "./session.ts";

/** Generations filled at most to go above a lost base; beyond, the commit is `expected + 1`. */
export const MAX_FILL_GENERATIONS = 1000;

/** What was committed. */
export interface Committed {
  manifest: Manifest;
  version: string;
}

/**
 * Commits `entries` as generation `target` (at least `expected + 1`) when
 * the datastore is at `expected`. The first step's ConflictError (a lost
 * race) propagates; a later one means another writer committed on top of
 * this state, and the commit stands at the last generation reached.
 */
export async function commitAt(
  s: Pick<RepoSession, "provider" | "identity">,
  model: ModelRef,
  opts: {
    expected: number;
    target: number;
    entries: FileEntry[];
    lease: Pick<Lease, "assertHeld">;
    signal: AbortSignal;
  },
): Promise<Committed> {
  const key = formatRef(model);
  let target = opts.target;
  if (target - opts.expected > MAX_FILL_GENERATIONS) {
    logger("sync").warn(
      `Committing ${key} as generation ${opts.expected + 1}, not ${target}: that would take ` +
        `more than ${MAX_FILL_GENERATIONS} commits.`,
    );
    target = opts.expected + 1;
  }
  target = Math.max(target, opts.expected + 1);
  let last: Committed | undefined;
  for (let g = opts.expected + 1; g <= target; g++) {
    opts.signal.throwIfAborted();
    opts.lease.assertHeld();
    const manifest = makeManifest(model, g, opts.entries, s.identity);
    try {
      const res = await s.provider.commitManifest(model, g - 1, manifest, {
        signal: opts.signal,
      });
      last = { manifest, version: res.version };
    } catch (err) {
      if (!(err instanceof ConflictError) || last === undefined) throw err;
      logger("sync").warn(
        `Another writer committed ${key} on top of generation ${g - 1} while it was being ` +
          `raised to generation ${target}; the commit stands at generation ${g - 1}.`,
      );
      return last;
    }
  }
  return last!;
}
