/**
 * The repository lock, `.modelsync/repo.lock`: one modelsync process per
 * repository at a time. It guards the working tree, the base files and
 * `.modelsync/tmp`, on this host only; datastore locks are separate.
 *
 * Acquiring creates the lock file exclusively (write a temporary file, then
 * `link` it into place, so no reader ever sees half a record). A lock left by
 * a process that is gone from this host is taken over with a warning; the
 * takeover runs under an OS file lock on `.modelsync/repo.lock.guard`, so two
 * processes taking over the same stale lock cannot both win.
 *
 * @example
 * ```ts
 * import { acquireRepoLock } from "./repo_lock.ts";
 * const repo = await Deno.makeTempDir();
 * const lock = await acquireRepoLock(repo, { operation: "push", timeoutMs: 1000 });
 * try {
 *   // work on the repository
 * } finally {
 *   await lock.release();
 * }
 * await Deno.remove(repo, { recursive: true });
 * ```
 * @module
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { InterruptedError, LockTimeoutError, ModelsyncError } from "../errors.ts";
import { logger } from "../log.ts";
import { pidAlive } from "../provider/stale.ts";
import { formatDuration } from "../duration.ts";

/** The record stored in `.modelsync/repo.lock`. */
export interface RepoLockRecord {
  pid: number;
  host: string;
  operation: string;
  /** ISO time the lock was taken. */
  startedAt: string;
  /** Random; identifies this acquisition so release never deletes another's lock. */
  nonce: string;
}

/** A held repository lock. */
export interface RepoLock {
  /** Deletes the lock if it is still ours. Safe to call twice. */
  release(): Promise<void>;
}

/** A lock file that cannot be parsed is taken over once it is this old. */
export const CORRUPT_LOCK_TAKEOVER_MS = 60_000;
const MAX_BACKOFF_MS = 1000;

/**
 * Nonces of the locks this process holds or is linking into place. A record
 * with our own pid whose nonce is not here was left by an earlier process
 * that had the same pid (common in containers).
 */
const ours = new Set<string>();

interface SeenLock {
  text: string;
  record?: RepoLockRecord;
  mtimeMs: number;
}

/** Path of the repository lock file. */
export function repoLockPath(repoDir: string): string {
  return join(repoDir, ".modelsync", "repo.lock");
}

/** Reads the current repository lock without taking it: `null` when free or unreadable. */
export async function inspectRepoLock(repoDir: string): Promise<RepoLockRecord | null> {
  return (await readLock(repoLockPath(repoDir)))?.record ?? null;
}

/**
 * Takes the repository lock, waiting with backoff up to `timeoutMs` while a
 * live process holds it; then a {@linkcode LockTimeoutError} (exit 75) naming
 * the holder and the remedy. Creates `.modelsync/` when missing.
 */
export async function acquireRepoLock(
  repoDir: string,
  opts: { operation: string; timeoutMs: number; signal?: AbortSignal },
): Promise<RepoLock> {
  const state = join(repoDir, ".modelsync");
  await Deno.mkdir(state, { recursive: true });
  const lockPath = join(state, "repo.lock");
  const me: RepoLockRecord = {
    pid: Deno.pid,
    host: hostname(),
    operation: opts.operation,
    startedAt: new Date().toISOString(),
    nonce: randomBytes(12).toString("hex"),
  };
  const tmp = join(state, `repo.lock.${me.pid}.${me.nonce}.tmp`);
  await Deno.writeTextFile(tmp, JSON.stringify(me) + "\n", { createNew: true });
  const deadline = Date.now() + opts.timeoutMs;
  ours.add(me.nonce);
  let acquired = false;
  let delay = 25;
  let announced = false;
  try {
    for (;;) {
      checkAbort(opts.signal, repoDir);
      try {
        await Deno.link(tmp, lockPath);
        acquired = true;
        await removeLeftovers(state, tmp);
        return makeHandle(lockPath, me.nonce);
      } catch (err) {
        if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      }
      const seen = await readLock(lockPath);
      if (seen === null) continue; // released meanwhile
      const stale = staleReason(seen, me.host);
      if (stale !== undefined) {
        await takeOver(state, lockPath, seen, stale);
        continue;
      }
      const now = Date.now();
      if (now >= deadline) throw timeoutError(repoDir, lockPath, seen, me.host);
      if (!announced) {
        announced = true;
        logger("repo").info(
          "Waiting for the repository lock of {repo}: held by {holder}.",
          { repo: repoDir, holder: describe(seen, me.host) },
        );
      }
      const wait = Math.min(delay * (0.5 + Math.random()), deadline - now);
      await sleep(wait, opts.signal, repoDir);
      delay = Math.min(delay * 2, MAX_BACKOFF_MS);
    }
  } finally {
    if (!acquired) ours.delete(me.nonce);
    await Deno.remove(tmp).catch(() => {});
  }
}

function makeHandle(lockPath: string, nonce: string): RepoLock {
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      try {
        const seen = await readLock(lockPath);
        if (seen?.record?.nonce === nonce) {
          await Deno.remove(lockPath);
        } else {
          logger("repo").warn("The repository lock {path} was taken over meanwhile; left it.", {
            path: lockPath,
          });
        }
      } finally {
        ours.delete(nonce);
      }
    },
  };
}

async function readLock(lockPath: string): Promise<SeenLock | null> {
  try {
    // The file never changes once linked into place, so two reads agree.
    const info = await Deno.lstat(lockPath);
    const text = await Deno.readTextFile(lockPath);
    return { text, mtimeMs: info.mtime?.getTime() ?? 0, record: parseRecord(text) };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

function parseRecord(text: string): RepoLockRecord | undefined {
  try {
    const d: unknown = JSON.parse(text);
    if (typeof d !== "object" || d === null) return undefined;
    const r = d as Record<string, unknown>;
    if (
      Number.isSafeInteger(r.pid) && typeof r.host === "string" &&
      typeof r.operation === "string" && typeof r.startedAt === "string" &&
      typeof r.nonce === "string"
    ) {
      return r as unknown as RepoLockRecord;
    }
  } catch {
    // fall through: corrupt
  }
  return undefined;
}

function staleReason(seen: SeenLock, host: string): string | undefined {
  const r = seen.record;
  if (r === undefined) {
    const age = Date.now() - seen.mtimeMs;
    return age > CORRUPT_LOCK_TAKEOVER_MS
      ? `it is unreadable and ${formatDuration(age)} old`
      : undefined;
  }
  if (r.host !== host) return undefined; // another host's pid cannot be judged here
  if (r.pid === Deno.pid) {
    return ours.has(r.nonce) ? undefined : `an earlier process with our pid ${r.pid} left it`;
  }
  return pidAlive(r.pid) ? undefined : `pid ${r.pid} on this host is gone`;
}

/** Deletes the stale lock `seen`, unless someone replaced it meanwhile. */
async function takeOver(
  state: string,
  lockPath: string,
  seen: SeenLock,
  reason: string,
): Promise<void> {
  const guard = await Deno.open(join(state, "repo.lock.guard"), { create: true, write: true });
  try {
    await guard.lock(true);
    const again = await readLock(lockPath);
    if (again === null || again.text !== seen.text) return; // it changed: judge again
    await Deno.remove(lockPath);
    const r = seen.record;
    logger("repo").warn("Took over the stale repository lock {path} ({holder}): {reason}.", {
      path: lockPath,
      holder: r === undefined ? "unreadable record" : `pid ${r.pid}, ${r.operation}`,
      reason,
    });
  } finally {
    await guard.unlock().catch(() => {});
    guard.close();
  }
}

/** Removes temporary lock files of processes that are gone. */
async function removeLeftovers(state: string, mine: string): Promise<void> {
  try {
    for await (const e of Deno.readDir(state)) {
      const m = /^repo\.lock\.(\d+)\.[0-9a-f]+\.tmp$/.exec(e.name);
      if (m === null || join(state, e.name) === mine) continue;
      if (Number(m[1]) !== Deno.pid && !pidAlive(Number(m[1]))) {
        await Deno.remove(join(state, e.name)).catch(() => {});
      }
    }
  } catch {
    // best effort
  }
}

function describe(seen: SeenLock, host: string): string {
  const r = seen.record;
  if (r === undefined) return "an unreadable lock record";
  const where = r.host === host ? "" : ` on host ${r.host}`;
  return `pid ${r.pid}${where}, ${r.operation} since ${r.startedAt}`;
}

function timeoutError(repoDir: string, lockPath: string, seen: SeenLock, host: string) {
  if (seen.record === undefined) {
    return new LockTimeoutError(
      `The repository lock ${lockPath} is unreadable (written ` +
        `${formatDuration(Math.max(0, Date.now() - seen.mtimeMs))} ago); if no modelsync ` +
        `process is working in ${repoDir}, delete it.`,
    );
  }
  return new LockTimeoutError(
    `Another modelsync process (${describe(seen, host)}) is working in ${repoDir}; ` +
      `wait for it or, if it is gone, delete ${lockPath}.`,
  );
}

function interrupted(signal: AbortSignal, repoDir: string): Error {
  if (signal.reason instanceof ModelsyncError) return signal.reason;
  return new InterruptedError(
    `Interrupted while waiting for the repository lock of ${repoDir}; nothing was changed.`,
    { cause: signal.reason },
  );
}

function checkAbort(signal: AbortSignal | undefined, repoDir: string): void {
  if (signal?.aborted) throw interrupted(signal, repoDir);
}

function sleep(ms: number, signal: AbortSignal | undefined, repoDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(interrupted(signal!, repoDir));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
