/**
 * A world of the stress suite: N repositories (writers) on one fresh
 * datastore sharing a few models, and the record of what happened to them:
 * every local edit a writer made, every commit a command acknowledged (from
 * its `--json` report), every saved copy a command reported, every process
 * killed on purpose. The checks that judge the record are in `_checks.ts`.
 *
 * Every CLI process is the real CLI (tests/_helpers.ts runs it as a
 * subprocess); a process meant to crash opens the datastore through
 * `stress/crashpoint.ts`.
 *
 * @module
 */
import { join } from "node:path";
import {
  type CliProcess,
  exists,
  listFiles,
  type Repo,
  type RunResult,
  Sandbox,
  sha256,
} from "../tests/_helpers.ts";
import { type DatastoreEntry, DirectReader, type Rng, type StoreHandle } from "./_common.ts";
import { type CrashPoint, formatCrashPoint } from "./crashpoint.ts";

/** The crash decorator module, for `--datastore module:…`. */
export const CRASHPOINT_MODULE: string = decodeURIComponent(
  new URL("./crashpoint.ts", import.meta.url).pathname,
);

/** One repository and its own random stream. */
export interface Writer {
  name: string;
  repo: Repo;
  rng: Rng;
}

/** A local edit: the content a writer put at a path (unique per edit). */
export interface Edit {
  writer: string;
  model: string;
  path: string;
  sha256: string;
  /** The writer itself later overwrote or deleted this content: nothing is owed. */
  superseded: boolean;
}

/** A commit a command reported as done. */
export interface Ack {
  writer: string;
  model: string;
  generation: number;
  pid: number;
  files: number;
  what: string;
  /** Found in the history by a check (it may be pruned by `gc --keep` later). */
  seen?: boolean;
  /** No longer in the history: `gc --keep` pruned it. */
  pruned?: boolean;
}

/** What a finished command left. */
export interface Outcome {
  res: RunResult;
  pid: number;
  /** Killed by its crash point. */
  killed: boolean;
  /** The `--json` document, when it printed one. */
  doc?: Record<string, unknown>;
}

/** How to run one command. */
export interface RunOpts {
  /** Exit codes that are a correct answer here; anything else is a violation. */
  allowed: number[];
  /** Crash (or stop) at this point: the process opens the datastore through crashpoint.ts. */
  crash?: CrashPoint;
  env?: Record<string, string>;
}

/** Paths writers choose from, so that their edits meet (and sometimes conflict). */
const SHARED_PATHS = ["a.txt", "b.txt", "c.bin", "d/e.txt", "d/f.bin", "g/h/i.json"];
/** A file every model keeps, so that no model is ever deleted as a whole by accident. */
export const README = "README";

/** The models of a world of `n` models, one of them with a scope. */
export function modelNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => (i === 1 ? `@lab/stress/m${i}` : `stress/m${i}`));
}

/** Repositories on one datastore and the record of what they did. */
export class World {
  readonly violations: string[] = [];
  readonly counts: Record<string, number> = {};
  readonly edits: Edit[] = [];
  readonly acks: Ack[] = [];
  /** Saved-copy directories commands reported, per writer. */
  readonly reportedSaved = new Map<string, Set<string>>();
  /** Pids killed at a crash point (their locks may stay, stale). */
  readonly killed = new Set<number>();
  /** Every file content seen in a stored commit (snapshots before gc and at checks). */
  readonly committed = new Set<string>();
  readonly #latest = new Map<string, Edit>();
  readonly #generation = new Map<string, number>();
  #reader?: DirectReader;

  private constructor(
    readonly label: string,
    readonly scratch: string,
    readonly store: StoreHandle,
    readonly sb: Sandbox,
    readonly writers: Writer[],
    readonly models: string[],
  ) {}

  /** A fresh datastore of `entry` with `writers` repositories; writer 0 creates the models. */
  static async create(opts: {
    entry: DatastoreEntry;
    label: string;
    writers: number;
    models: number;
    rng: Rng;
  }): Promise<World> {
    const scratch = await Deno.makeTempDir({ prefix: `modelsync-stress-${opts.label}-` });
    const store = await opts.entry.create({ root: scratch, hint: opts.label });
    const sb = await Sandbox.create({ datastoreSpec: store.spec, env: store.env });
    const writers: Writer[] = [];
    for (let i = 0; i < opts.writers; i++) {
      const name = `w${i}`;
      const repo = await sb.repo(name, { MODELSYNC_HOLDER: name });
      writers.push({ name, repo, rng: opts.rng.fork(`${opts.label}/${name}`) });
    }
    const w = new World(opts.label, scratch, store, sb, writers, modelNames(opts.models));
    const first = writers[0];
    for (const m of w.models) {
      await first.repo.write(`models/${m}/${README}`, `${m}: a model of the stress run\n`);
    }
    await w.run(first, ["push", "--json"], { allowed: [0] });
    for (const other of writers.slice(1)) await w.run(other, ["pull", "--json"], { allowed: [0] });
    return w;
  }

  /** Counts an event for the summary. */
  count(what: string, n = 1): void {
    this.counts[what] = (this.counts[what] ?? 0) + n;
  }

  /**
   * Sets a figure a check computes afresh each time it runs (so that
   * checks repeated during a run do not count the same commit twice).
   */
  setCount(what: string, n: number): void {
    this.counts[what] = n;
  }

  /** Records a violated property (the run then fails, printing its seed). */
  violation(text: string): void {
    this.violations.push(`[${this.label}] ${text}`);
  }

  /** Arguments and environment that make a run open the datastore through crashpoint.ts. */
  crashArgs(point: CrashPoint): { args: string[]; env: Record<string, string> } {
    return {
      args: ["--datastore", `module:${CRASHPOINT_MODULE}`],
      env: {
        MODELSYNC_TEST_CRASH_INNER: this.store.spec,
        MODELSYNC_TEST_CRASH: formatCrashPoint(point),
      },
    };
  }

  /** Starts a command in a writer's repository. */
  spawn(w: Writer, args: string[], opts: Omit<RunOpts, "allowed"> = {}): CliProcess {
    const crash = opts.crash === undefined ? undefined : this.crashArgs(opts.crash);
    return w.repo.spawn([...(crash?.args ?? []), ...args], {
      env: { ...crash?.env, ...opts.env },
    });
  }

  /** Runs a command to its end and records what it reported. */
  async run(w: Writer, args: string[], opts: RunOpts): Promise<Outcome> {
    const p = this.spawn(w, args, opts);
    return this.absorb(w, p, await p.done, opts);
  }

  /**
   * Records a finished command: a kill at its crash point, or its exit code
   * (a violation unless allowed) and its `--json` report (acknowledged
   * commits, saved copies, generations seen).
   */
  absorb(w: Writer, p: CliProcess, res: RunResult, opts: RunOpts): Outcome {
    const what = `${w.name}: modelsync ${res.args.join(" ")}`;
    const out: Outcome = { res, pid: p.pid, killed: false };
    this.count("commands");
    if (res.signal !== null) {
      if (res.signal === "SIGKILL" && opts.crash !== undefined) {
        this.killed.add(p.pid);
        out.killed = true;
        return out;
      }
      this.violation(`${what}: ended by ${res.signal}\n${tail(res)}`);
      return out;
    }
    if (!opts.allowed.includes(res.code)) {
      this.violation(
        `${what}: exit ${res.code}, expected ${opts.allowed.join(" or ")}\n${tail(res)}`,
      );
    }
    if (!res.args.includes("--json")) return out;
    try {
      out.doc = JSON.parse(res.stdout);
    } catch {
      this.violation(`${what}: stdout is not one JSON document\n${tail(res)}`);
      return out;
    }
    this.#record(w, p.pid, what, out.doc!);
    return out;
  }

  #record(w: Writer, pid: number, what: string, doc: Record<string, unknown>): void {
    const schema = String(doc.schema);
    if (schema === "modelsync.restore/1") {
      const saved = doc.saved as { dir: string } | undefined;
      if (saved !== undefined) this.#saved(w).add(saved.dir);
      return;
    }
    if (!["modelsync.push/1", "modelsync.flush/1", "modelsync.pull/1"].includes(schema)) return;
    const models = (doc.models ?? []) as {
      model: string;
      status: string;
      generation: number | null;
      files: number;
      saved?: { dir: string };
    }[];
    for (const m of models) {
      if (m.saved !== undefined) this.#saved(w).add(m.saved.dir);
      if (schema !== "modelsync.pull/1" && (m.status === "pushed" || m.status === "deleted")) {
        this.acks.push({
          writer: w.name,
          model: m.model,
          generation: m.generation!,
          pid,
          files: m.files,
          what,
        });
        this.count("acknowledged commits");
      }
      if (m.status === "conflict") this.count("conflicts reported");
      if (m.generation !== null && m.status !== "conflict") {
        const key = `${w.name}\0${m.model}`;
        const before = this.#generation.get(key) ?? 0;
        if (m.generation < before) {
          this.violation(
            `${what}: ${m.model} went back from generation ${before} to ${m.generation} in ${w.name}`,
          );
        }
        this.#generation.set(key, Math.max(before, m.generation));
      }
    }
  }

  #saved(w: Writer): Set<string> {
    let s = this.reportedSaved.get(w.name);
    if (s === undefined) this.reportedSaved.set(w.name, s = new Set());
    return s;
  }

  /**
   * One random edit by `w` (in `model`, or one it picks): add a file, modify
   * one, or delete one (never the README, never below two files). Each new
   * content is unique, so it can be traced wherever it ends up.
   */
  async edit(w: Writer, model?: string): Promise<void> {
    const rng = w.rng;
    const m = model ?? rng.pick(this.models);
    const dir = w.repo.modelDir(m);
    const files = (await listFiles(dir)).filter((p) => p !== README);
    const kind = files.length === 0
      ? "add"
      : rng.weighted({ add: 3, modify: 5, delete: files.length >= 2 ? 1 : 0 });
    this.count(`edits (${kind})`);
    if (kind === "delete") {
      const p = rng.pick(files);
      await this.#supersede(w, m, p);
      await Deno.remove(join(dir, p));
      return;
    }
    let p: string;
    if (kind === "modify") p = rng.pick(files);
    else {
      const free = SHARED_PATHS.filter((s) => !files.includes(s));
      p = free.length > 0 && rng.chance(0.7)
        ? rng.pick(free)
        : `own/${w.name}-${this.edits.length}.txt`;
    }
    await this.write(w, m, p);
  }

  /** Writes a new unique content at `path` of `model` in `w` and records it. */
  async write(w: Writer, model: string, path: string): Promise<Edit> {
    const rng = w.rng;
    const size = rng.weighted({ tiny: 50, small: 35, medium: 12, large: 3 });
    const n = size === "tiny"
      ? rng.int(200)
      : size === "small"
      ? rng.range(1024, 16_384)
      : size === "medium"
      ? rng.range(65_536, 262_144)
      : rng.range(1_048_576, 1_572_864);
    const head = new TextEncoder().encode(`${w.name} edit ${this.edits.length} ${rng.hex(16)}\n`);
    const bytes = new Uint8Array(head.length + n);
    bytes.set(head);
    bytes.set(rng.bytes(n), head.length);
    await this.#supersede(w, model, path);
    await w.repo.write(`models/${model}/${path}`, bytes);
    const e: Edit = { writer: w.name, model, path, sha256: sha256(bytes), superseded: false };
    this.edits.push(e);
    this.#latest.set(`${w.name}\0${model}\0${path}`, e);
    return e;
  }

  /**
   * The writer is about to overwrite or delete `path`: if the file still
   * holds the writer's own last edit there, that edit is given up by the
   * writer itself. If something else replaced it (a pull), it stays owed.
   */
  async #supersede(w: Writer, model: string, path: string): Promise<void> {
    const e = this.#latest.get(`${w.name}\0${model}\0${path}`);
    if (e === undefined || e.superseded) return;
    const file = w.repo.path(`models/${model}/${path}`);
    if (!(await exists(file))) return;
    const info = await Deno.lstat(file);
    if (info.isFile && sha256(await Deno.readFile(file)) === e.sha256) e.superseded = true;
  }

  /** Direct reads of the datastore (opened once). */
  async reader(): Promise<DirectReader> {
    this.#reader ??= await DirectReader.open(this.store, this.sb.root);
    return this.#reader;
  }

  /** Notes every file content of every stored commit (before gc may prune some). */
  async snapshotCommitted(): Promise<void> {
    for (const c of await (await this.reader()).commits()) {
      for (const f of c.files) this.committed.add(f.sha256);
    }
  }

  /** Hashes of the files under a writer's saved-copy directories (all, or the reported ones). */
  async savedHashes(w: Writer, opts: { reportedOnly: boolean }): Promise<Set<string>> {
    const out = new Set<string>();
    const dirs = opts.reportedOnly
      ? [...(this.reportedSaved.get(w.name) ?? [])]
      : [".modelsync/conflicts", ".modelsync/restore-saved"];
    for (const d of dirs) {
      const abs = w.repo.path(d);
      for (const rel of await listFiles(abs)) {
        const info = await Deno.lstat(join(abs, rel));
        if (info.isFile) out.add(sha256(await Deno.readFile(join(abs, rel))));
      }
    }
    return out;
  }

  /** Closes the direct reader and removes the directories (unless `keep`). */
  async dispose(opts: { keep: boolean }): Promise<void> {
    await this.#reader?.close();
    if (opts.keep) return;
    await this.sb.dispose();
    await Deno.remove(this.scratch, { recursive: true }).catch(() => {});
  }
}

/** The end of a run's output, for a violation's message. */
export function tail(res: RunResult): string {
  const cut = (s: string) => (s.length > 1500 ? `…${s.slice(-1500)}` : s);
  return `  --- stdout ---\n${cut(res.stdout)}\n  --- stderr ---\n${cut(res.stderr)}`;
}
