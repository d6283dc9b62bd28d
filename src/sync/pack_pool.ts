/**
 * Building packs on worker threads. A first push of many small files reads
 * and hashes every one of them to put it in a pack (the scan hashed it once;
 * the pack build checks the bytes it packs against that hash), and on one
 * thread that took about half the push's time on the main thread. Workers
 * (`./_pack_worker.ts`), as many as there are cores up to 4, each build
 * whole packs with the same `readCheckedSource` and `PackBuilder` and hand
 * the pack's bytes back without a copy; the main thread only stores them.
 *
 * A pack a worker could not build (a file changed or vanished since the
 * scan, or the worker failed) is answered `null`: the caller builds it
 * in-process, which reports the error as it always does.
 *
 * @module
 */
import type { UploadItem } from "./transfer.ts";

/** One file of a pack to build. @internal */
export type PackItem = Pick<UploadItem, "sha256" | "size" | "file">;

/** A request to a worker. @internal */
export interface PackRequest {
  id: number;
  items: PackItem[];
}

/** A worker's answer: the pack, or that it could not build it. @internal */
export type PackReply =
  | { id: number; ok: true; sha256: string; bytes: Uint8Array; offsets: number[]; size: number }
  | { id: number; ok: false };

/** A pack a worker built. */
export interface BuiltPack {
  sha256: string;
  bytes: Uint8Array;
  /** The offset of each item, in the order given. */
  offsets: number[];
  /** Bytes of the chunks (without the index and footer). */
  size: number;
}

/** Packable files in a run below which no worker is started (one costs tens of milliseconds). */
const MIN_FILES = 2_000;

/** Worker threads that build packs, started on first use; {@linkcode PackWorkers.close} stops them. */
export class PackWorkers {
  readonly #count: number;
  readonly #workers: Worker[] = [];
  readonly #idle: Worker[] = [];
  readonly #queue: { req: PackRequest; resolve: (r: BuiltPack | null) => void }[] = [];
  readonly #waiting = new Map<number, (r: BuiltPack | null) => void>();
  /** The build each busy worker is on. */
  readonly #busy = new Map<Worker, number>();
  #nextId = 0;
  #closed = false;

  private constructor(count: number) {
    this.#count = count;
  }

  /**
   * Workers for a run that packs `files` files, or undefined when that is
   * too few to pay for a worker or the machine has one core.
   */
  static forFiles(files: number): PackWorkers | undefined {
    const cores = navigator.hardwareConcurrency ?? 1;
    if (cores < 2 || files < MIN_FILES) return undefined;
    return new PackWorkers(Math.min(cores, 4));
  }

  /**
   * The pack of `items` (each checked against its hash), or null when a
   * worker could not build it: the caller then builds it in-process.
   */
  build(items: readonly PackItem[], signal?: AbortSignal): Promise<BuiltPack | null> {
    if (this.#closed || signal?.aborted) return Promise.resolve(null);
    const req: PackRequest = {
      id: ++this.#nextId,
      items: items.map(({ sha256, size, file }) => ({ sha256, size, file })),
    };
    return new Promise((resolve) => {
      this.#queue.push({ req, resolve });
      this.#pump();
    });
  }

  /** Stops every worker; builds still waiting are answered null. */
  close(): void {
    this.#closed = true;
    for (const w of this.#workers) w.terminate();
    for (const resolve of this.#waiting.values()) resolve(null);
    for (const q of this.#queue.splice(0)) q.resolve(null);
    this.#waiting.clear();
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const w = this.#idle.pop() ?? this.#spawn();
      if (w === undefined) return;
      const { req, resolve } = this.#queue.shift()!;
      this.#waiting.set(req.id, resolve);
      this.#busy.set(w, req.id);
      w.postMessage(req);
    }
  }

  /** Answers build `id`. */
  #answer(id: number | undefined, pack: BuiltPack | null): void {
    if (id === undefined) return;
    this.#waiting.get(id)?.(pack);
    this.#waiting.delete(id);
  }

  #spawn(): Worker | undefined {
    if (this.#closed || this.#workers.length >= this.#count) return undefined;
    const w = new Worker(new URL("./_pack_worker.ts", import.meta.url), { type: "module" });
    this.#workers.push(w);
    w.onmessage = (e: MessageEvent<PackReply>) => {
      const r = e.data;
      this.#busy.delete(w);
      this.#answer(
        r.id,
        r.ok ? { sha256: r.sha256, bytes: r.bytes, offsets: r.offsets, size: r.size } : null,
      );
      this.#idle.push(w);
      this.#pump();
    };
    // A worker that fails answers its build null and takes no more work.
    w.onerror = (e) => {
      e.preventDefault();
      w.terminate();
      this.#answer(this.#busy.get(w), null);
      this.#busy.delete(w);
      this.#workers.splice(this.#workers.indexOf(w), 1);
      if (this.#workers.length === 0) this.#failAll();
    };
    return w;
  }

  /** No worker left and none can start: every waiting build is built in-process. */
  #failAll(): void {
    this.#closed = true;
    for (const q of this.#queue.splice(0)) q.resolve(null);
  }
}
