/**
 * The repository lock, `.modelsync/repo.lock`: one modelsync process per
 * repository at a time. It guards the working tree, the base files and
 * `.modelsync/tmp`; datastore locks are separate. The repository may be on
 * a disk shared between hosts (a container's volume, a home on NFS), so the
 * lock is a lease like the datastore's: the holder renews it every ttl/3,
 * and a record not renewed within its ttl (plus the skew margin, by the
 * local clock) is stale wherever its holder ran. A holder on this host whose
 * pid is gone is stale at once.
 *
 * Acquiring creates the lock file exclusively (write a temporary file, then
 * `link` it into place, so no reader ever sees half a record). Renewing and
 * taking over both replace the file under an OS file lock on
 * `.modelsync/repo.lock.guard`, each after re-reading it there: a renewal
 * rewrites the record (temporary file, then `rename`) only while it still
 * carries our nonce, and a takeover deletes it only while it is still the
 * very version judged stale. So a renewal and a takeover never both win,
 * and two takeovers never both win. A holder that finds its record gone or
 * replaced, or cannot renew before its lease ends, loses the lock: its
 * `signal` aborts with a {@linkcode LeaseLostError} and the work stops.
 *
 * @example
 * ```ts
 * import { acquireRepoLock } from "./repo_lock.ts";
 * const repo = await Deno.makeTempDir();
 * const lock = await acquireRepoLock(repo, { operation: "push", timeoutMs: 1000 });
 * try {
 *   // work on the repository, stopping when lock.signal aborts
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
import { InterruptedError, LeaseLostError, LockTimeoutError, ModelsyncError } from "../errors.ts";
import { logger } from "../log.ts";
import { formatDuration } from "../duration.ts";
import {
  CORRUPT_LOCK_TAKEOVER_MS,
  describeRepoHolder,
  parseRepoLock,
  type RepoLockRecord,
  type SeenLock,
  staleReason,
} from "./repo_lock_record.ts";

export { CORRUPT_LOCK_TAKEOVER_MS, type RepoLockRecord };

/** Default lease time of the repository lock (`--lock-ttl` sets it for sync commands). */
export const REPO_LOCK_TTL_MS = 30_000;

/** A held repository lock. */
export interface RepoLock {
  /** Aborts with a {@linkcode LeaseLostError} when the lock is lost while held. */
  readonly signal: AbortSignal;
  /** Throws that error once the lock is lost. */
  assertHeld(): void;
  /** Stops renewing and deletes the lock if it is still ours. Safe to call twice. */
  release(): Promise<void>;
}

const MAX_BACKOFF_MS = 1000;

/**
 * Nonces of the locks this process holds or is linking into place. A record
 * with our own pid whose nonce is not here was left by an earlier process
 * that had the same pid (common in containers).
 */
const ours = new Set<string>();

/** Path of the repository lock file. */
export function repoLockPath(repoDir: string): string {
  return join(repoDir, ".modelsync", "repo.lock");
}

/** Reads the current repository lock without taking it: `null` when free or corrupt. */
export async function inspectRepoLock(repoDir: string): Promise<RepoLockRecord | null> {
  return (await readLock(repoLockPath(repoDir)))?.record ?? null;
}

/**
 * Takes the repository lock, waiting with backoff up to `timeoutMs` while a
 * live process holds it; then a {@linkcode LockTimeoutError} (exit 75) naming
 * the holder and the remedy. Creates `.modelsync/` when missing. The lock is
 * renewed every `ttlMs / 3` until released.
 */
export async function acquireRepoLock(
  repoDir: string,
  opts: { operation: string; timeoutMs: number; ttlMs?: number; signal?: AbortSignal },
): Promise<RepoLock> {
  const state = join(repoDir, ".modelsync");
  await Deno.mkdir(state, { recursive: true });
  const lockPath = join(state, "repo.lock");
  const host = hostname();
  const nonce = randomBytes(12).toString("hex");
  const ttlMs = Math.max(1, opts.ttlMs ?? REPO_LOCK_TTL_MS);
  const tmp = join(state, `repo.lock.${Deno.pid}.${nonce}.tmp`);
  const deadline = Date.now() + opts.timeoutMs;
  ours.add(nonce);
  let acquired = false;
  let delay = 25;
  let announced = false;
  try {
    for (;;) {
      checkAbort(opts.signal, repoDir);
      // A fresh record for every attempt: after a long wait, its times are now.
      const sentAtMs = Date.now();
      const at = new Date(sentAtMs).toISOString();
      const me: RepoLockRecord = {
        pid: Deno.pid,
        host,
        operation: opts.operation,
        startedAt: at,
        renewedAt: at,
        ttlMs,
        nonce,
      };
      await Deno.writeTextFile(tmp, JSON.stringify(me) + "\n");
      try {
        await Deno.link(tmp, lockPath);
        acquired = true;
        await removeLeftovers(state, tmp);
        return new HeldRepoLock({ repoDir, state, lockPath, record: me, sentAtMs });
      } catch (err) {
        // NotFound: a clean-up removed our temporary file meanwhile; write it again.
        if (!(err instanceof Deno.errors.AlreadyExists || err instanceof Deno.errors.NotFound)) {
          throw err;
        }
      }
      const seen = await readLock(lockPath);
      if (seen === null) continue; // released meanwhile
      const stale = staleReason(seen, { host, pid: Deno.pid, ours: (n) => ours.has(n) });
      if (stale !== undefined) {
        await takeOver(state, lockPath, seen, stale);
        continue;
      }
      const now = Date.now();
      if (now >= deadline) throw timeoutError(repoDir, lockPath, seen, host);
      if (!announced) {
        announced = true;
        logger("repo").warn("Waiting for the repository lock of {repo}: held by {holder}.", {
          repo: repoDir,
          holder: describeRepoHolder(seen, host),
        });
      }
      const wait = Math.min(delay * (0.5 + Math.random()), deadline - now);
      await sleep(wait, opts.signal, repoDir);
      delay = Math.min(delay * 2, MAX_BACKOFF_MS);
    }
  } finally {
    if (!acquired) ours.delete(nonce);
    await Deno.remove(tmp).catch(() => {});
  }
}

/** A held lock and its renewal loop. */
class HeldRepoLock implements RepoLock {
  readonly #repoDir: string;
  readonly #state: string;
  readonly #lockPath: string;
  readonly #record: RepoLockRecord;
  readonly #lostCtl = new AbortController();
  #expiresAtMs: number;
  #tick?: ReturnType<typeof setTimeout>;
  #expiry?: ReturnType<typeof setTimeout>;
  #inflight?: Promise<void>;
  #lost?: LeaseLostError;
  #released = false;

  constructor(o: {
    repoDir: string;
    state: string;
    lockPath: string;
    record: RepoLockRecord;
    sentAtMs: number;
  }) {
    this.#repoDir = o.repoDir;
    this.#state = o.state;
    this.#lockPath = o.lockPath;
    this.#record = o.record;
    // Counted from before the record was written: the holder gives up first.
    this.#expiresAtMs = o.sentAtMs + o.record.ttlMs;
    this.#armExpiry();
    this.#schedule();
  }

  get signal(): AbortSignal {
    return this.#lostCtl.signal;
  }

  assertHeld(): void {
    if (this.#lost) throw this.#lost;
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearTimeout(this.#tick);
    clearTimeout(this.#expiry);
    await this.#inflight?.catch(() => {});
    const nonce = this.#record.nonce;
    try {
      await underGuard(this.#state, async () => {
        const seen = await readLock(this.#lockPath);
        if (seen?.record?.nonce === nonce) {
          await Deno.remove(this.#lockPath);
        } else if (this.#lost === undefined) {
          logger("repo").warn("The repository lock {path} was taken over meanwhile; left it.", {
            path: this.#lockPath,
          });
        }
      });
    } finally {
      ours.delete(nonce);
    }
  }

  #schedule(): void {
    if (this.#released || this.#lost) return;
    this.#tick = setTimeout(() => {
      this.#inflight = this.#renew().finally(() => {
        this.#inflight = undefined;
        this.#schedule();
      });
    }, Math.max(1, Math.floor(this.#record.ttlMs / 3)));
  }

  #armExpiry(): void {
    clearTimeout(this.#expiry);
    this.#expiry = setTimeout(
      () => this.#lose("it could not be renewed before its lease ended"),
      Math.max(0, this.#expiresAtMs - Date.now()),
    );
  }

  /** Rewrites renewedAt, under the guard and only while the file still carries our nonce. */
  async #renew(): Promise<void> {
    if (this.#released || this.#lost) return;
    const sentAtMs = Date.now();
    const next = { ...this.#record, renewedAt: new Date(sentAtMs).toISOString() };
    let other: SeenLock | null | undefined;
    try {
      other = await underGuard(this.#state, async () => {
        const seen = await readLock(this.#lockPath);
        if (seen?.record?.nonce !== next.nonce) return seen;
        await replaceAtomically(this.#state, this.#lockPath, JSON.stringify(next) + "\n");
        return undefined;
      });
    } catch (err) {
      // Retried at the next tick; the expiry timer ends the lease if none succeeds in time.
      logger("repo").debug("Could not renew the repository lock {path}: {error}", {
        path: this.#lockPath,
        error: String(err),
      });
      return;
    }
    if (this.#released) return;
    if (other === undefined) {
      this.#expiresAtMs = sentAtMs + this.#record.ttlMs;
      this.#armExpiry();
    } else {
      this.#lose(
        other === null
          ? "its lock file was removed"
          : `it was taken over by ${describeRepoHolder(other, this.#record.host)}`,
      );
    }
  }

  #lose(why: string): void {
    if (this.#lost || this.#released) return;
    clearTimeout(this.#tick);
    clearTimeout(this.#expiry);
    this.#lost = new LeaseLostError(
      `Lost the repository lock of ${this.#repoDir} (${why}); work stopped. Rerun the command.`,
    );
    // The work reports it (its signal aborts with this error); logged here for -v only.
    logger("repo").debug("{message}", { message: this.#lost.message });
    this.#lostCtl.abort(this.#lost);
  }
}

/** Reads the lock file once: text and mtime from one open file (it is replaced by rename). */
async function readLock(lockPath: string): Promise<SeenLock | null> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(lockPath, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  try {
    const info = await file.stat();
    const text = new TextDecoder().decode(await readAll(file, 65_536));
    const parsed = parseRepoLock(text);
    return { text, mtimeMs: info.mtime?.getTime() ?? 0, ...parsed };
  } finally {
    file.close();
  }
}

async function readAll(file: Deno.FsFile, max: number): Promise<Uint8Array> {
  const buf = new Uint8Array(max);
  let total = 0;
  while (total < buf.length) {
    const n = await file.read(buf.subarray(total));
    if (n === null) break;
    total += n;
  }
  return buf.subarray(0, total);
}

/** Runs `fn` holding the OS lock on `.modelsync/repo.lock.guard`. */
async function underGuard<T>(state: string, fn: () => Promise<T>): Promise<T> {
  const guard = await Deno.open(join(state, "repo.lock.guard"), { create: true, write: true });
  try {
    await guard.lock(true);
    return await fn();
  } finally {
    await guard.unlock().catch(() => {});
    guard.close();
  }
}

/** Replaces `path` with `text`: a temporary file renamed over it, so readers see one or the other. */
async function replaceAtomically(state: string, path: string, text: string): Promise<void> {
  const tmp = join(state, `repo.lock.${Deno.pid}.${randomBytes(12).toString("hex")}.tmp`);
  try {
    await Deno.writeTextFile(tmp, text, { createNew: true });
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/** Deletes the stale lock `seen`, unless someone replaced or renewed it meanwhile. */
async function takeOver(
  state: string,
  lockPath: string,
  seen: SeenLock,
  reason: string,
): Promise<void> {
  await underGuard(state, async () => {
    const again = await readLock(lockPath);
    if (again === null || again.text !== seen.text) return; // it changed: judge again
    await Deno.remove(lockPath);
    logger("repo").warn("Took over the stale repository lock {path} ({holder}): {reason}.", {
      path: lockPath,
      holder: describeRepoHolder(seen, hostname()),
      reason,
    });
  });
}

/**
 * Removes temporary lock files left behind: unchanged for a minute (a
 * waiting acquirer rewrites its own at every attempt, a renewal lives for
 * milliseconds), whichever host wrote them.
 */
async function removeLeftovers(state: string, mine: string): Promise<void> {
  try {
    for await (const e of Deno.readDir(state)) {
      if (!/^repo\.lock\.\d+\.[0-9a-f]+\.tmp$/.test(e.name)) continue;
      const path = join(state, e.name);
      if (path === mine) continue;
      const mtime = (await Deno.lstat(path)).mtime?.getTime() ?? Date.now();
      if (Date.now() - mtime > 60_000) await Deno.remove(path).catch(() => {});
    }
  } catch {
    // best effort
  }
}

function timeoutError(repoDir: string, lockPath: string, seen: SeenLock, host: string) {
  if (seen.record === undefined) {
    const age = formatDuration(Math.max(0, Date.now() - seen.mtimeMs));
    return new LockTimeoutError(
      `The repository lock ${lockPath} is corrupt (${seen.problem ?? "unreadable"}; written ` +
        `${age} ago): it is taken over once unchanged for ` +
        `${formatDuration(CORRUPT_LOCK_TAKEOVER_MS)}, or delete it if no modelsync process is ` +
        `working in ${repoDir}.`,
    );
  }
  return new LockTimeoutError(
    `Another modelsync process (${describeRepoHolder(seen, host)}) is working in ${repoDir}; ` +
      `wait for it or raise --lock-timeout, or if it is gone, delete ${lockPath}.`,
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
