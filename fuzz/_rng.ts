/**
 * A small seeded random number generator for the fuzzer: the same seed gives
 * the same cases on every machine, so a failure is rerun exactly with
 * `deno task fuzz --seed N --target T --case I`.
 *
 * @example
 * ```ts
 * import { Rng } from "./_rng.ts";
 * const rng = Rng.forCase(42, "manifest", 7);
 * console.log(rng.int(10), rng.pick(["a", "b"]));
 * ```
 * @module
 */

/** A sfc32 generator seeded from (seed, target, case). */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }

  /** The generator of one case: independent of every other case and target. */
  static forCase(seed: number, target: string, index: number): Rng {
    let h = 2166136261 ^ (seed >>> 0);
    for (const ch of `${target}#${index}#${Math.floor(seed / 2 ** 32)}`) {
      h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
    }
    return new Rng(h >>> 0);
  }

  /** A float in [0, 1). */
  next(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty list. */
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  /** A string of `n` characters drawn from `alphabet`. */
  string(n: number, alphabet: string): string {
    let s = "";
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
}
