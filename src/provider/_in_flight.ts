/**
 * The calls a guarded provider has in flight, with their deadlines and their
 * callers' signals, watched by one timer and one abort listener per caller
 * signal. A timer and a listener per call cost more memory (about 2 KiB of
 * short-lived objects each) than a whole small-blob upload on a local disk,
 * and a large push makes 100,000 such calls.
 *
 * @example
 * ```ts
 * import { InFlight } from "./_in_flight.ts";
 * const calls = new InFlight();
 * const entry = {
 *   due: performance.now() + 1_000,
 *   expire: () => console.log("deadline"),
 *   abort: (reason: unknown) => console.log("caller aborted", reason),
 * };
 * calls.add(entry, undefined);
 * calls.delete(entry, undefined); // settled in time: nothing printed
 * ```
 * @module
 */

/** One call in flight. */
export interface InFlightCall {
  /** `performance.now()` by which the call must have settled. */
  due: number;
  /** Called once when `due` passes first. */
  expire: () => void;
  /** Called once when the caller's signal aborts first. */
  abort: (reason: unknown) => void;
}

/** Calls in flight; see the module doc. */
export class InFlight {
  #calls = new Set<InFlightCall>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the armed timer fires (Infinity: none armed). */
  #armedFor = Infinity;
  #byCaller = new WeakMap<AbortSignal, Set<InFlightCall>>();

  /** Number of calls in flight. */
  get size(): number {
    return this.#calls.size;
  }

  /** Watches `call` until {@linkcode InFlight.delete}. `caller` must not be aborted yet. */
  add(call: InFlightCall, caller: AbortSignal | undefined): void {
    this.#calls.add(call);
    if (call.due < this.#armedFor) this.#arm(call.due);
    if (caller === undefined) return;
    let set = this.#byCaller.get(caller);
    if (set === undefined) {
      const calls = new Set<InFlightCall>();
      set = calls;
      this.#byCaller.set(caller, calls);
      caller.addEventListener("abort", () => {
        for (const c of [...calls]) {
          calls.delete(c);
          if (this.#calls.delete(c)) c.abort(caller.reason);
        }
        this.#disarmIfIdle();
      }, { once: true });
    }
    set.add(call);
  }

  /** Stops watching `call` (it settled, or was expired or aborted). */
  delete(call: InFlightCall, caller: AbortSignal | undefined): void {
    this.#calls.delete(call);
    if (caller !== undefined) this.#byCaller.get(caller)?.delete(call);
    this.#disarmIfIdle();
  }

  /** No timer is left behind when nothing is in flight (it would keep the process alive). */
  #disarmIfIdle(): void {
    if (this.#calls.size > 0 || this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
  }

  #arm(due: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#armedFor = due;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, Math.ceil(due - performance.now())));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const c of [...this.#calls]) {
      if (c.due <= now) {
        this.#calls.delete(c);
        c.expire();
      } else if (c.due < next) {
        next = c.due;
      }
    }
    if (next < this.#armedFor) this.#arm(next);
  }
}
