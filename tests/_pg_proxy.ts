/**
 * A TCP proxy in front of PostgreSQL (or PgBouncer) for the end-to-end
 * tests: it counts the statements clients send (each `Parse` of the
 * extended protocol and each simple `Query`: the client sends every
 * statement unprepared) and can be cut — every connection closed and new
 * ones refused, as a server that stopped — and brought back on the same
 * port. It relays bytes unchanged; it reads only the client's side, and
 * only while the stream is plain (the tests' server has no TLS).
 *
 * @example
 * ```ts ignore
 * import { PgProxy } from "./_pg_proxy.ts";
 * const proxy = await PgProxy.start("postgres://postgres@127.0.0.1:5432/postgres");
 * // … point the CLI at proxy.url …
 * console.log(proxy.statements);
 * proxy.cut();
 * await proxy.restore();
 * await proxy.close();
 * ```
 * @module
 */

const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

/** A counting, cuttable proxy to one PostgreSQL endpoint. */
export class PgProxy {
  /** Statements sent by clients: `Parse` and simple `Query` messages. */
  statements = 0;
  /** Transactions begun: statements that are `BEGIN`. */
  transactions = 0;
  /** Connections accepted. */
  connections = 0;
  /** Each chunk a client sends waits this long before it is passed on (a slow network). */
  latencyMs = 0;
  /** Every new connection is closed as soon as it is accepted (a reset, again and again). */
  resetConnections = false;
  readonly #upstream: URL;
  readonly #port: number;
  #listener: Deno.Listener | null;
  readonly #open = new Set<Deno.Conn>();

  private constructor(upstream: URL, listener: Deno.Listener) {
    this.#upstream = upstream;
    this.#listener = listener;
    this.#port = (listener.addr as Deno.NetAddr).port;
    this.#accept(listener);
  }

  /** Listens on a free loopback port in front of the server of `url`. */
  static start(url: string): Promise<PgProxy> {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return Promise.resolve(new PgProxy(new URL(url), listener));
  }

  /** `url` of the upstream with the proxy's address instead. */
  get url(): string {
    const u = new URL(this.#upstream.href);
    u.host = `127.0.0.1:${this.#port}`;
    return u.href;
  }

  /** Forgets the counts. */
  reset(): void {
    this.statements = 0;
    this.transactions = 0;
    this.connections = 0;
  }

  /** Closes every connection and refuses new ones until {@linkcode restore}. */
  cut(): void {
    this.#listener?.close();
    this.#listener = null;
    for (const c of this.#open) closeQuietly(c);
    this.#open.clear();
  }

  /** Listens again on the same port. */
  restore(): Promise<void> {
    if (this.#listener === null) {
      this.#listener = Deno.listen({ hostname: "127.0.0.1", port: this.#port });
      this.#accept(this.#listener);
    }
    return Promise.resolve();
  }

  /** Stops listening and closes every connection. */
  close(): Promise<void> {
    this.cut();
    return Promise.resolve();
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    try {
      for await (const client of listener) this.#relay(client);
    } catch {
      // closed by cut()
    }
  }

  async #relay(client: Deno.Conn): Promise<void> {
    this.connections++;
    if (this.resetConnections) {
      closeQuietly(client);
      return;
    }
    this.#open.add(client);
    let server: Deno.Conn;
    try {
      server = await Deno.connect({
        hostname: this.#upstream.hostname,
        port: Number(this.#upstream.port || 5432),
      });
    } catch {
      this.#open.delete(client);
      closeQuietly(client);
      return;
    }
    if (!this.#open.has(client)) {
      closeQuietly(server);
      return;
    }
    this.#open.add(server);
    const down = server.readable.pipeTo(client.writable).catch(() => {});
    const up = this.#pumpUp(client, server);
    await Promise.allSettled([down, up]);
    this.#open.delete(client);
    this.#open.delete(server);
    closeQuietly(client);
    closeQuietly(server);
  }

  /** Relays the client's bytes, counting its messages as they pass. */
  async #pumpUp(client: Deno.Conn, server: Deno.Conn): Promise<void> {
    const writer = server.writable.getWriter();
    let pending = new Uint8Array(0);
    let startup = true;
    try {
      for await (const chunk of client.readable) {
        if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
        await writer.write(chunk);
        const buf = new Uint8Array(pending.length + chunk.length);
        buf.set(pending);
        buf.set(chunk, pending.length);
        const view = new DataView(buf.buffer);
        let at = 0;
        for (;;) {
          if (startup) {
            if (buf.length - at < 8) break;
            const len = view.getInt32(at);
            if (buf.length - at < len) break;
            const code = view.getInt32(at + 4);
            if (code !== SSL_REQUEST && code !== GSS_REQUEST && code !== CANCEL_REQUEST) {
              startup = false;
            }
            at += len;
          } else {
            if (buf.length - at < 5) break;
            const len = view.getInt32(at + 1);
            if (buf.length - at < 1 + len) break;
            const type = String.fromCharCode(buf[at]);
            if (type === "P" || type === "Q") {
              this.statements++;
              if (/^\s*BEGIN\b/i.test(statementText(buf.subarray(at + 5, at + 1 + len), type))) {
                this.transactions++;
              }
            }
            at += 1 + len;
          }
        }
        pending = buf.slice(at);
      }
    } catch {
      // a side closed
    } finally {
      writer.releaseLock();
    }
  }
}

/** The SQL text of a `Parse` (after the statement name) or `Query` message body. */
function statementText(body: Uint8Array, type: string): string {
  const start = type === "P" ? body.indexOf(0) + 1 : 0;
  const end = body.indexOf(0, start);
  return new TextDecoder().decode(
    body.subarray(start, Math.min(end < 0 ? body.length : end, start + 64)),
  );
}

function closeQuietly(c: Deno.Conn): void {
  try {
    c.close();
  } catch {
    // closed already
  }
}
