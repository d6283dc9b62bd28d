/**
 * Error classes for modelsync. Every error the tool raises on purpose is a
 * {@linkcode ModelsyncError} with a stable `code` and the process `exitCode`
 * of SPEC §6; `main.ts` maps them to the exit status in one place.
 *
 * Messages name the thing and the remedy, on one line.
 *
 * @example
 * ```ts
 * import { ConflictError } from "./errors.ts";
 * const err = new ConflictError("Cannot push a/m1: both sides changed x. Run \"modelsync pull\".");
 * console.log(err.exitCode); // 4
 * ```
 * @module
 */

/** Exit codes of SPEC §6. */
export const ExitCode = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  partial: 5,
  datastore: 6,
  lockTimeout: 75,
  interrupted: 130,
} as const;

/** Base class of every deliberate modelsync error. */
export class ModelsyncError extends Error {
  /** Stable machine-readable code, e.g. `"conflict"`. */
  readonly code: string;
  /** Process exit code for this error. */
  readonly exitCode: number;

  constructor(message: string, opts: { code: string; exitCode: number; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = opts.code;
    this.exitCode = opts.exitCode;
  }
}

/** Bad command line, bad model ref, bad or unknown configuration (exit 2). */
export class UsageError extends ModelsyncError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, { code: "usage", exitCode: ExitCode.usage, cause: opts.cause });
  }
}

/** Something named does not exist: repository, datastore, model (exit 3). */
export class NotFoundError extends ModelsyncError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, { code: "not-found", exitCode: ExitCode.notFound, cause: opts.cause });
  }
}

/**
 * A lost compare-and-swap race or a sync conflict (exit 4).
 * Providers throw it from `commitManifest` when the expected generation is no
 * longer current; `current` carries the generation they found, when known.
 */
export class ConflictError extends ModelsyncError {
  readonly current?: number;
  readonly paths: string[];
  constructor(message: string, opts: { current?: number; paths?: string[]; cause?: unknown } = {}) {
    super(message, { code: "conflict", exitCode: ExitCode.conflict, cause: opts.cause });
    this.current = opts.current;
    this.paths = opts.paths ?? [];
  }
}

/** Some models of a multi-model run failed while others succeeded (exit 5). */
export class PartialFailureError extends ModelsyncError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, { code: "partial", exitCode: ExitCode.partial, cause: opts.cause });
  }
}

/**
 * The datastore is unreachable, refuses us, or misbehaves (exit 6).
 * `retryable` marks transient faults (timeouts, resets, 5xx) that may be
 * retried with backoff.
 */
export class DatastoreError extends ModelsyncError {
  readonly retryable: boolean;
  constructor(message: string, opts: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, { code: "datastore", exitCode: ExitCode.datastore, cause: opts.cause });
    this.retryable = opts.retryable ?? false;
  }
}

/**
 * Stored data that fails validation: a manifest with an escaping path, a
 * garbled lock record, a corrupt base file. Exit 6 for datastore objects;
 * local corruption uses the same class with its own remedy in the message.
 */
export class CorruptError extends ModelsyncError {
  constructor(message: string, opts: { cause?: unknown; exitCode?: number } = {}) {
    super(message, {
      code: "corrupt",
      exitCode: opts.exitCode ?? ExitCode.datastore,
      cause: opts.cause,
    });
  }
}

/** A lock could not be acquired within `--lock-timeout` (exit 75). */
export class LockTimeoutError extends ModelsyncError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, { code: "lock-timeout", exitCode: ExitCode.lockTimeout, cause: opts.cause });
  }
}

/** A held lease could not be renewed; work stopped before its next commit (exit 75). */
export class LeaseLostError extends ModelsyncError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, { code: "lease-lost", exitCode: ExitCode.lockTimeout, cause: opts.cause });
  }
}

/** The run was interrupted by SIGINT/SIGTERM or ran past `--timeout` (exit 130). */
export class InterruptedError extends ModelsyncError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, { code: "interrupted", exitCode: ExitCode.interrupted, cause: opts.cause });
  }
}

/** True when `err` is a transient datastore fault worth retrying. */
export function isRetryable(err: unknown): boolean {
  return err instanceof DatastoreError && err.retryable;
}

/**
 * A local file's content no longer matches the hash taken when it was
 * scanned: it changed while being pushed (exit 4: rerun once it settles).
 */
export class ContentChangedError extends ModelsyncError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, { code: "content-changed", exitCode: ExitCode.conflict, cause: opts.cause });
  }
}

/**
 * A local file or directory is in a state modelsync cannot use, or the
 * machine refuses a local write: a lock file that is a directory, a data
 * folder that is a file, permission denied, a read-only file system, no
 * space left, a name too long for the file system (exit 2: the fault is in
 * this machine's working tree and only its owner can fix it; a rerun after
 * the fix completes). `code` tells them apart: `local-file`,
 * `permission-denied`, `read-only`, `no-space`, `name-too-long`.
 */
export class LocalFileError extends ModelsyncError {
  /** The local path at fault, when known. */
  readonly path?: string;
  constructor(message: string, opts: { cause?: unknown; code?: string; path?: string } = {}) {
    super(message, {
      code: opts.code ?? "local-file",
      exitCode: ExitCode.usage,
      cause: opts.cause,
    });
    this.path = opts.path;
  }
}

/**
 * Some entries of a model cannot be synced (a name that is not valid UTF-8,
 * a link leaving the model, ...): the model is not pushed at all (exit 2).
 * `entries` lists each with its problem, for the report.
 */
export class UnsyncableError extends ModelsyncError {
  readonly entries: { path: string; problem: string }[];
  constructor(message: string, opts: { entries: { path: string; problem: string }[] }) {
    super(message, { code: "unsyncable", exitCode: ExitCode.usage });
    this.entries = opts.entries;
  }
}

const LOCAL_FS_CODES = new Set([
  "EACCES",
  "EPERM",
  "EISDIR",
  "ENOTDIR",
  "EEXIST",
  "ENOENT",
  "ELOOP",
  "EROFS",
  "ENOSPC",
  "EDQUOT",
  "ENAMETOOLONG",
]);

/** The errno-style code of an error (`ENOSPC`), if it has one. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The last path Deno names in an error message (`...: open '/a/b'`, `rename 'x' -> 'y'`). */
function pathInMessage(message: string): string | undefined {
  const m = /'([^']*)'$/.exec(message.split("\n")[0]);
  return m?.[1];
}

/**
 * The one-line error of a local file-system fault at `path` (the path Deno's
 * message names when `path` is not given), naming the remedy; or `err`
 * unchanged when it is not a local file-system fault.
 */
export function localFault(err: unknown, path?: string): unknown {
  if (err instanceof ModelsyncError) return err;
  const code = errnoOf(err);
  const local = err instanceof Deno.errors.PermissionDenied ||
    err instanceof Deno.errors.NotADirectory ||
    err instanceof Deno.errors.IsADirectory || err instanceof Deno.errors.AlreadyExists ||
    err instanceof Deno.errors.NotFound || err instanceof Deno.errors.FilesystemLoop ||
    (code !== undefined && LOCAL_FS_CODES.has(code));
  if (!local) return err;
  const detail = String((err as Error).message ?? err).split("\n")[0];
  const at = path ?? pathInMessage(detail);
  const where = at === undefined ? "a local path" : at;
  const make = (kind: string, message: string) =>
    new LocalFileError(message, { cause: err, code: kind, path: at });
  if (code === "ENOSPC" || code === "EDQUOT") {
    const what = code === "EDQUOT"
      ? "the disk quota is exceeded"
      : "no space is left on the device";
    return make(
      "no-space",
      `Cannot write ${where}: ${what} (${code}). Free space on that file system (or raise the ` +
        `quota) and rerun; nothing half-written was kept.`,
    );
  }
  if (code === "ENAMETOOLONG") {
    return make(
      "name-too-long",
      `Cannot use ${where}: a name in it is too long for this file system (ENAMETOOLONG). ` +
        `Move the repository to a shorter path, or rename the file in the datastore from a ` +
        `repository where the name fits, and rerun.`,
    );
  }
  if (code === "EROFS") {
    return make(
      "read-only",
      `Cannot write ${where}: the file system is read-only (EROFS). Mount it read-write, or ` +
        `work in a repository on a writable disk, and rerun.`,
    );
  }
  if (err instanceof Deno.errors.PermissionDenied || code === "EACCES" || code === "EPERM") {
    return make(
      "permission-denied",
      `Cannot use ${where}: permission denied (${code ?? "EACCES"}). Fix its ownership or ` +
        `permissions (or run modelsync as the user owning the repository) and rerun.`,
    );
  }
  return make(
    "local-file",
    `Cannot use a local file: ${detail}. Fix or remove that path and rerun.`,
  );
}

/**
 * Wraps a raw file-system error from a local path in a
 * {@linkcode LocalFileError} (see {@linkcode localFault}); everything else
 * passes through. Datastore errors never reach here raw: providers wrap
 * theirs in `DatastoreError`.
 */
export function classifyError(err: unknown): unknown {
  return localFault(err);
}
