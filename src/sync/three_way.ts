/**
 * The three-way comparison of base, local and remote file states, shared by
 * pull (apply remote changes) and push (rebase onto a newer remote).
 *
 * @example
 * ```ts
 * import { threeWay } from "./three_way.ts";
 * const f = (sha256: string) => ({ sha256, size: 1, executable: false });
 * const plan = threeWay({
 *   base: new Map([["a", f("1")]]),
 *   local: new Map([["a", f("2")]]),
 *   remote: new Map([["a", f("1")], ["b", f("3")]]),
 * });
 * console.log(plan.keepLocal, plan.takeRemote); // ["a"] ["b"]
 * ```
 * @module
 */
import type { PackLocation } from "../model/pack.ts";

/**
 * The state of one path on one side; undefined = absent. A symbolic link has
 * `link` (its target); its `sha256` is that of the target's bytes, so a link
 * and a file with the same bytes differ only by `link`.
 */
export interface FileState {
  sha256: string;
  size: number;
  executable: boolean;
  link?: string;
  /**
   * Where the content is stored when it is packed (a remote state only).
   * Not part of the state: two states with the same content are the same
   * wherever it is stored.
   */
  pack?: PackLocation;
}

/** Inputs: path → state for each side. */
export interface ThreeWayInput {
  base: ReadonlyMap<string, FileState>;
  local: ReadonlyMap<string, FileState>;
  remote: ReadonlyMap<string, FileState>;
}

/** Where each changed path goes. Every list is sorted. */
export interface ThreeWayPlan {
  /** Changed remotely only: the remote state should land locally. */
  takeRemote: string[];
  /** Changed locally only: the local state stays (and push sends it). */
  keepLocal: string[];
  /** Changed on both sides to the same state. */
  converged: string[];
  /** Changed on both sides differently. */
  conflicts: string[];
}

/**
 * True when two states are the same content, mode and kind (both absent
 * counts as equal): a link is never the same state as a file, even when the
 * file holds the link's target as its bytes.
 */
export function sameState(a: FileState | undefined, b: FileState | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.sha256 === b.sha256 && a.executable === b.executable && a.link === b.link;
}

/** Compares the three sides path by path. */
export function threeWay(input: ThreeWayInput): ThreeWayPlan {
  const paths = new Set<string>([
    ...input.base.keys(),
    ...input.local.keys(),
    ...input.remote.keys(),
  ]);
  const plan: ThreeWayPlan = { takeRemote: [], keepLocal: [], converged: [], conflicts: [] };
  for (const p of [...paths].sort()) {
    const b = input.base.get(p);
    const l = input.local.get(p);
    const r = input.remote.get(p);
    const localChanged = !sameState(l, b);
    const remoteChanged = !sameState(r, b);
    if (!localChanged && !remoteChanged) continue;
    if (!localChanged) plan.takeRemote.push(p);
    else if (!remoteChanged) plan.keepLocal.push(p);
    else if (sameState(l, r)) plan.converged.push(p);
    else plan.conflicts.push(p);
  }
  return plan;
}

/**
 * The merged file set: local where the local side changed, remote elsewhere.
 * With `theirs`, conflicting paths take the remote state; otherwise the local.
 */
export function mergeStates(
  input: ThreeWayInput,
  plan: ThreeWayPlan,
  opts: { theirs: boolean },
): Map<string, FileState> {
  const out = new Map<string, FileState>(input.remote);
  const fromLocal = opts.theirs ? plan.keepLocal : [...plan.keepLocal, ...plan.conflicts];
  for (const p of fromLocal) {
    const l = input.local.get(p);
    if (l === undefined) out.delete(p);
    else out.set(p, l);
  }
  return out;
}
