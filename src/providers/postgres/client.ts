/**
 * The PostgreSQL provider's access to its database: a pool of the npm
 * `postgres` client with no state that lives in a connection (no prepared
 * statements, no session settings, no advisory locks), so it works through
 * PgBouncer in transaction pooling mode. Every operation is one
 * transaction whose first statement sets `statement_timeout` (and, for
 * uploads, `idle_in_transaction_session_timeout`) with `SET LOCAL`
 * semantics; the statements of a short operation are pipelined into one
 * round trip. Errors are mapped to modelsync's (design/postgres.md,
 * "Errors, deadlines, retries").
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import net from "node:net";
import postgres from "postgres";
import { DatastoreError, ModelsyncError, NotFoundError } from "../../errors.ts";
import { describeLocation, type ResolvedPostgresConfig } from "./config.ts";

/** One row as the client returns it. */
export type Row = Record<string, unknown>;
/** Runs one statement inside the current transaction. */
export type Statement = (text: string, params?: unknown[]) => Promise<Row[]>;

type PoolOptions = { callTimeoutMs: number; max: number };

const log = getLogger(["modelsync", "postgres"]);

/** A pool of connections to one schema of one database. */
export class PgPool {
  readonly where: string;
  readonly config: ResolvedPostgresConfig;
  /** The schema, quoted for SQL text. */
  readonly schema: string;
  /** Transactions started so far (tests, `-v` debug logs). */
  transactions = 0;
  /** The deadline of one call; each statement's `statement_timeout`. */
  readonly callTimeoutMs: number;
  readonly #sql: postgres.Sql;

  constructor(config: ResolvedPostgresConfig, opts: PoolOptions) {
    this.config = config;
    this.where = describeLocation(config);
    this.schema = `"${config.schema}"`;
    this.callTimeoutMs = opts.callTimeoutMs;
    const ssl = config.sslmode === "disable"
      ? false
      : config.sslmode === "verify-ca"
      ? "verify-full"
      : config.sslmode;
    this.#sql = postgres({
      host: config.host,
      port: config.port,
      ...(config.socketDir === undefined
        ? {}
        : { path: `${config.socketDir}/.s.PGSQL.${config.port}` }),
      database: config.database,
      user: config.user,
      pass: () => config.password() ?? "",
      ssl: ssl as "prefer",
      max: opts.max,
      // PgBouncer in transaction mode: no named prepared statements. (The
      // client's type lookup on each new connection stays on: `reserve()`
      // of postgres 3.4 never resolves on a fresh connection without it.)
      prepare: false,
      idle_timeout: 30,
      connect_timeout: config.connectTimeoutS ??
        Math.max(1, Math.ceil(Math.min(10_000, opts.callTimeoutMs) / 1000)),
      connection: { application_name: config.applicationName },
      onnotice: (n) => log.debug("postgres notice: {message}", { message: String(n.message) }),
      debug: false,
      // The client's documented `socket` option (absent from its types).
      ...({ socket: () => this.#connect() } as unknown as Record<string, never>),
    });
  }

  /** Connections in a row that closed before the server answered. */
  #failedConnects = 0;
  /** When the next connection may be made (after one that failed). */
  #nextConnectAt = 0;

  /**
   * A new connection to the server, made here so that attempts after a
   * failure are spaced out: the client opens a new connection at once
   * whenever one closes while a reservation waits, so a server (or a proxy)
   * that resets every connection got hundreds a second until
   * `connect_timeout`. After a connection closed before the server said
   * anything, the next waits 25 ms, doubling up to 500 ms; the first answer
   * from the server ends the wait.
   */
  async #connect(): Promise<net.Socket> {
    const wait = this.#nextConnectAt - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const c = this.config;
    const socket = c.socketDir === undefined
      ? net.connect(c.port, c.host)
      : net.connect(`${c.socketDir}/.s.PGSQL.${c.port}`);
    // Read by the client for TLS (the server name) as on its own sockets.
    Object.assign(socket, { host: c.host, port: c.port });
    let answered = false;
    socket.once("data", () => {
      answered = true;
      this.#failedConnects = 0;
    });
    socket.once("close", () => {
      if (answered) return;
      this.#failedConnects++;
      this.#nextConnectAt = Date.now() + Math.min(500, 25 * 2 ** (this.#failedConnects - 1));
    });
    return socket;
  }

  /**
   * One short transaction: the statements `build` returns are sent at once
   * after BEGIN and the timeout, and COMMIT after them (one round trip);
   * returns each statement's rows.
   */
  async batch(
    what: string,
    build: (q: Statement) => Promise<Row[]>[],
    opts: { signal?: AbortSignal } = {},
  ): Promise<Row[][]> {
    return await this.#reserved(what, opts.signal, async (q) => {
      const all = [
        q("BEGIN"),
        q("SELECT set_config('statement_timeout', $1, true)", [String(this.callTimeoutMs)]),
        ...build(q),
        q("COMMIT"),
      ];
      const settled = await Promise.allSettled(all);
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
      if (failed !== undefined) throw failed.reason;
      return settled.slice(2, -1).map((s) => (s as PromiseFulfilledResult<Row[]>).value);
    });
  }

  /**
   * One transaction whose statements `body` runs one after another (a
   * streamed upload). `idleMs` bounds the time between two statements on
   * the server too. `body` returning normally commits; throwing rolls back.
   * A `ModelsyncError` thrown by `body` passes through unmapped.
   */
  async transaction<T>(
    what: string,
    body: (q: Statement) => Promise<T>,
    opts: { signal?: AbortSignal; idleMs?: number } = {},
  ): Promise<T> {
    return await this.#reserved(what, opts.signal, async (q) => {
      const begin = [
        q("BEGIN"),
        q(
          "SELECT set_config('statement_timeout', $1, true), " +
            "set_config('idle_in_transaction_session_timeout', $2, true)",
          [String(this.callTimeoutMs), String(opts.idleMs ?? this.callTimeoutMs)],
        ),
      ];
      await Promise.all(begin);
      const result = await body(q);
      await q("COMMIT");
      return result;
    });
  }

  /**
   * Runs `fn` on a reserved connection, mapping every error; a failure of
   * `fn` rolls its transaction back.
   *
   * An abort (the call's deadline, a lost lease) rejects the caller at once,
   * but never sends the server a CancelRequest: one names a backend, not a
   * statement, so by the time it arrives it may cancel the next transaction
   * on that connection (a lock's release, found by the stress suite). The
   * abandoned transaction issues no further statement, ends on its
   * connection (its statements are bounded by `statement_timeout`, a
   * failure is rolled back), and only then is the connection released: no
   * connection goes back to the pool inside a transaction. Its outcome is
   * unknown to the caller, as any lost answer is, which the commit and lock
   * protocols allow for (compare-and-swap on versions).
   */
  async #reserved<T>(
    what: string,
    signal: AbortSignal | undefined,
    fn: (q: Statement) => Promise<T>,
  ): Promise<T> {
    signal?.throwIfAborted();
    this.transactions++;
    let abandoned = false;
    let r: postgres.ReservedSql;
    try {
      // Not raced with the signal: a connection still being made is bounded
      // by connect_timeout, and a caller that went on while its reservation
      // waited would have the next try queue a second one (under connection
      // resets, each pending reservation opens connection after connection).
      r = await this.#sql.reserve();
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw pgFail(err, this, what);
    }
    if (signal?.aborted) {
      r.release();
      throw signal.reason;
    }
    const work = (async () => {
      try {
        return await fn((text, params = []) => {
          if (abandoned) return Promise.reject(signal?.reason);
          const p = r.unsafe(text, params as postgres.ParameterOrJSON<never>[]);
          return p.then((rows) => rows as unknown as Row[]);
        });
      } catch (err) {
        // Outside a transaction this is a no-op (with a notice). A connection
        // that broke needs none: the server ended its session, and the
        // client would open a new connection only to send it.
        if (!connectionLost(err)) await r.unsafe("ROLLBACK").catch(() => {});
        throw err;
      } finally {
        r.release();
      }
    })();
    try {
      return await untilAborted(work, signal, () => abandoned = true);
    } catch (err) {
      if (err instanceof ModelsyncError) throw err;
      if (signal?.aborted) throw signal.reason;
      throw pgFail(err, this, what);
    }
  }

  /** Closes every connection (queries still running get a second). */
  async close(): Promise<void> {
    await this.#sql.end({ timeout: 1 });
  }
}

/** SQLSTATE classes and codes worth retrying: the connection, the server going away, a lost race of the server's own. */
const TRANSIENT_STATES = new Set([
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "57014", // query_canceled (statement_timeout)
  "40001", // serialization_failure
  "40P01", // deadlock_detected
  "53300", // too_many_connections
  "53400", // configuration_limit_exceeded
  "55P03", // lock_not_available
  "25P03", // idle_in_transaction_session_timeout
  "08000",
  "08001",
  "08003",
  "08004",
  "08006",
  "08P01",
]);
const TRANSIENT_CODES = new Set(
  ("ECONNREFUSED ECONNRESET ETIMEDOUT EPIPE ENOTFOUND EAI_AGAIN ENETUNREACH EHOSTUNREACH " +
    "ECONNABORTED CONNECTION_CLOSED CONNECTION_ENDED CONNECTION_DESTROYED CONNECT_TIMEOUT")
    .split(" "),
);
const AUTH_STATES = new Set(["28P01", "28000"]);

/** True for the client's own errors of a connection that broke (not a server's answer). */
function connectionLost(err: unknown): boolean {
  const code = errorCode(err) ?? "";
  return TRANSIENT_CODES.has(code) || code.startsWith("08");
}

/** The SQLSTATE of a server error, or the client's error code. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/**
 * Maps a client or server error met doing `what` to a modelsync error
 * naming the datastore. Authentication errors never carry the server's
 * message, only what to check; no message carries a password (the client
 * is given it as a function and never puts it in an error).
 */
export function pgFail(
  err: unknown,
  at: { where: string; config: ResolvedPostgresConfig },
  what: string,
): unknown {
  if (err instanceof ModelsyncError) return err;
  const e = err as Error & { code?: string; severity?: string };
  if (e?.name === "AbortError") return err;
  const code = errorCode(err) ?? "";
  const head = `Cannot ${what} on the postgres datastore ${at.where}`;
  const fatal = (why: string) => new DatastoreError(`${head}: ${why}`, { cause: err });
  if (AUTH_STATES.has(code) || /SASL|password authentication|no password/i.test(e?.message ?? "")) {
    const from = at.config.passwordFrom === "none"
      ? "no password was given"
      : `the password came from ${
        at.config.passwordFrom === "url" ? "the datastore URL" : at.config.passwordFrom
      }`;
    return fatal(
      `the server refused role ${JSON.stringify(at.config.user)} (${
        code || "authentication failed"
      }; ` +
        `${from}). Check PGPASSWORD, the password file (PGPASSFILE, default ~/.pgpass) or the ` +
        `user in the datastore URL.`,
    );
  }
  if (code === "3D000") {
    return new NotFoundError(
      `${head}: database ${JSON.stringify(at.config.database)} does not exist. Create it, or fix ` +
        `the datastore URL.`,
      { cause: err },
    );
  }
  if (code === "42501") {
    return fatal(
      `role ${JSON.stringify(at.config.user)} lacks a privilege (42501: ${oneLine(e.message)}). ` +
        `Grant it, or use a role that may.`,
    );
  }
  if (TRANSIENT_STATES.has(code) || TRANSIENT_CODES.has(code) || code.startsWith("08")) {
    return new DatastoreError(
      `${head}: ${code} ${oneLine(e?.message)} (transient). Check that the server is reachable; ` +
        `modelsync retries such faults.`,
      { cause: err, retryable: true },
    );
  }
  if (code === "UNDEFINED_VALUE" || code === "MAX_PARAMETERS_EXCEEDED") return err;
  return fatal(`${code === "" ? "" : `${code} `}${oneLine(e?.message ?? String(err))}.`);
}

function oneLine(text: string | undefined): string {
  return String(text ?? "").split("\n")[0].slice(0, 200);
}

/**
 * `work`'s outcome, or `signal`'s reason as soon as it aborts (`onAbort`
 * runs first); `work` goes on and its late outcome is dropped.
 */
function untilAborted<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
  onAbort: () => void,
): Promise<T> {
  if (signal === undefined) return work;
  return new Promise<T>((resolve, reject) => {
    const abort = () => {
      onAbort();
      work.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", abort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}
