/**
 * Helpers for the end-to-end tests: run the real CLI as a subprocess against
 * temporary repositories and a temporary filesystem datastore, collect its
 * stdout, stderr and exit code, poll for conditions, and inspect the datastore
 * layout directly (SPEC §3).
 *
 * Every test builds its own {@linkcode Sandbox} and disposes of it in
 * `finally` (or with `await using`), which kills any process still running
 * and removes the temporary directories.
 *
 * @example
 * ```ts
 * import { Sandbox } from "./_helpers.ts";
 * await using sb = await Sandbox.create();
 * const repo = await sb.repo("a");
 * await repo.write("models/vpc/m1/a.txt", "hello");
 * const res = await repo.run(["push", "--json"]);
 * console.log(res.code, res.json());
 * ```
 * @module
 */
import { dirname, join } from "node:path";
import { Datastore, exists, listFiles, pseudoRandomBytes } from "./_fs.ts";

export * from "./_fs.ts";

/** Root of the project (the directory holding `main.ts`). */
export const ROOT: string = decodeURIComponent(new URL("..", import.meta.url).pathname);
/** The CLI entry point. */
export const MAIN: string = join(ROOT, "main.ts");
/** This host's name, as the CLI records it in lock records. */
export const HOST: string = Deno.hostname();

/** What a finished CLI process left behind. */
export interface RunResult {
  code: number;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** The arguments it ran with, for messages. */
  args: string[];
  /** Parses stdout as exactly one JSON document (throws with context otherwise). */
  json(): Record<string, unknown>;
}

/** How to run the CLI. */
export interface RunOptions {
  /** Working directory (default: the repository's directory). */
  cwd?: string;
  /** Extra environment (NO_COLOR=1 and RUST_BACKTRACE=0 are always set). */
  env?: Record<string, string>;
}

let exitSeq = 0;

/** A CLI process running in the background. */
export class CliProcess {
  readonly pid: number;
  readonly args: string[];
  /** Resolves when the process has exited and its output is fully read. */
  readonly done: Promise<RunResult>;
  #child: Deno.ChildProcess;
  #stdout = "";
  #stderr = "";
  #exited = false;
  #exitOrder = -1;

  constructor(args: string[], opts: RunOptions & { cwd: string }) {
    this.args = args;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", MAIN, ...args],
      cwd: opts.cwd,
      env: cliEnv(opts.env),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.pid = child.pid;
    const out = this.#drain(child.stdout, (s) => (this.#stdout += s));
    const err = this.#drain(child.stderr, (s) => (this.#stderr += s));
    this.done = (async () => {
      const status = await child.status;
      this.#exited = true;
      this.#exitOrder = ++exitSeq;
      await Promise.all([out, err]);
      return makeResult(args, status.code, status.signal, this.#stdout, this.#stderr);
    })();
  }

  async #drain(stream: ReadableStream<Uint8Array>, add: (s: string) => void): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) add(decoder.decode(chunk, { stream: true }));
    add(decoder.decode());
  }

  /** True once the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Order in which processes were seen to exit (1, 2, ...); -1 while running. */
  get exitOrder(): number {
    return this.#exitOrder;
  }

  /** stderr received so far. */
  get stderrSoFar(): string {
    return this.#stderr;
  }

  /** stdout received so far. */
  get stdoutSoFar(): string {
    return this.#stdout;
  }

  /** Sends a signal (default SIGKILL) unless the process has already exited. */
  kill(signal: Deno.Signal = "SIGKILL"): void {
    if (this.#exited) return;
    try {
      this.#child.kill(signal);
    } catch {
      // Already gone.
    }
  }

  /**
   * Kills the process with SIGKILL and waits until it is gone. Throws when it
   * had already exited on its own (the test meant to kill it part-way).
   */
  async killAndWait(): Promise<RunResult> {
    this.kill("SIGKILL");
    const res = await this.done;
    if (res.signal !== "SIGKILL") {
      throw new Error(`expected to kill the process part-way, but it had exited\n${describe(res)}`);
    }
    return res;
  }
}

function makeResult(
  args: string[],
  code: number,
  signal: string | null,
  stdout: string,
  stderr: string,
): RunResult {
  return {
    code,
    signal,
    stdout,
    stderr,
    args,
    json() {
      try {
        const doc = JSON.parse(stdout);
        if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
          throw new Error("not a JSON object");
        }
        return doc as Record<string, unknown>;
      } catch (err) {
        throw new Error(
          `stdout of "modelsync ${args.join(" ")}" is not exactly one JSON object (${
            (err as Error).message
          }).\n${describe(this)}`,
        );
      }
    },
  };
}

/**
 * The environment for a CLI process: ours without MODELSYNC_*, AWS_* and
 * AZURE_* (a test never reaches a real cloud account by accident; S3 and
 * Azure tests pass their own), plus NO_COLOR and `extra`.
 */
export function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (!/^(MODELSYNC|AWS|AZURE)_/.test(k)) env[k] = v;
  }
  env.NO_COLOR = "1";
  env.RUST_BACKTRACE = "0";
  return { ...env, ...extra };
}

/** A one-paragraph description of a run, for assertion messages. */
export function describe(res: RunResult): string {
  return `$ modelsync ${res.args.join(" ")}\nexit: ${res.code}${
    res.signal ? ` (signal ${res.signal})` : ""
  }\n--- stdout ---\n${res.stdout}\n--- stderr ---\n${res.stderr}`;
}

/** Throws unless the run exited with `code`. */
export function expectCode(res: RunResult, code: number, what = ""): RunResult {
  if (res.code !== code) {
    throw new Error(
      `${what ? what + ": " : ""}expected exit ${code}, got ${res.code}\n${describe(res)}`,
    );
  }
  return res;
}

/** Throws unless stderr is exactly one line starting with `modelsync: error: `. */
export function expectOneLineError(res: RunResult, code: number, what = ""): string {
  expectCode(res, code, what);
  const lines = res.stderr.split("\n").filter((l) => l.trim() !== "");
  if (lines.length !== 1 || !lines[0].startsWith("modelsync: error: ")) {
    throw new Error(
      `${what ? what + ": " : ""}expected exactly one stderr line starting with ` +
        `"modelsync: error: ", got ${lines.length} line(s)\n${describe(res)}`,
    );
  }
  return lines[0];
}

/** Checks the JSON document on stdout has the given schema and returns it. */
export function expectJson(res: RunResult, schema: string): Record<string, unknown> {
  const doc = res.json();
  if (doc.schema !== schema) {
    throw new Error(
      `expected schema ${schema}, got ${JSON.stringify(doc.schema)}\n${describe(res)}`,
    );
  }
  return doc;
}

/** One model's line in a push/flush/pull JSON report. */
export interface ModelReport {
  model: string;
  status: string;
  files: number;
  bytes: number;
  /** Blobs stored by this push (push and flush reports). */
  uploaded?: number;
  generation: number | null;
  ms: number;
  rebased?: boolean;
  conflicts?: string[];
  error?: string;
}

/** The `models` of a push/flush/pull report, by model ref. */
export function reportByModel(doc: Record<string, unknown>): Map<string, ModelReport> {
  const models = doc.models as ModelReport[];
  if (!Array.isArray(models)) throw new Error(`no models array in ${JSON.stringify(doc)}`);
  return new Map(models.map((m) => [m.model, m]));
}

/** Polls `cond` until it is true, or throws after `timeoutMs` naming `what`. */
export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  while (true) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(opts.intervalMs ?? 25);
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A model repository made by `modelsync init`. */
export class Repo {
  constructor(
    readonly sandbox: Sandbox,
    readonly dir: string,
    readonly env: Record<string, string>,
  ) {}

  /** Absolute path of something in the repository. */
  path(rel: string): string {
    return join(this.dir, rel);
  }

  /** Directory of a model: `models/TYPE/ID`. */
  modelDir(model: string): string {
    return join(this.dir, "models", model);
  }

  /** Writes a file (creating parents), text or bytes, with an optional mode. */
  async write(rel: string, content: string | Uint8Array, mode?: number): Promise<void> {
    const p = this.path(rel);
    await Deno.mkdir(dirname(p), { recursive: true });
    if (typeof content === "string") await Deno.writeTextFile(p, content);
    else await Deno.writeFile(p, content);
    if (mode !== undefined) await Deno.chmod(p, mode);
  }

  /**
   * Sets `packSmallFiles: false` in modelsync.yaml: every file a blob of its
   * own, for tests about single blobs (which one a kill or a gc hits). Packs
   * have tests of their own (tests/packs_test.ts).
   */
  async noPacks(): Promise<void> {
    await this.write(
      "modelsync.yaml",
      `${await this.read("modelsync.yaml")}\npackSmallFiles: false\n`,
    );
  }

  /** Reads a file as text. */
  read(rel: string): Promise<string> {
    return Deno.readTextFile(this.path(rel));
  }

  /** Reads a file as bytes. */
  readBytes(rel: string): Promise<Uint8Array> {
    return Deno.readFile(this.path(rel));
  }

  /** True when the path exists in the repository. */
  has(rel: string): Promise<boolean> {
    return exists(this.path(rel));
  }

  /** Files of a model, relative to its directory. */
  modelFiles(model: string): Promise<string[]> {
    return listFiles(this.modelDir(model));
  }

  /** Runs the CLI in this repository and waits for it. */
  run(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return this.spawn(args, opts).done;
  }

  /** Starts the CLI in this repository in the background. */
  spawn(args: string[], opts: RunOptions = {}): CliProcess {
    return this.sandbox.spawn(args, {
      cwd: opts.cwd ?? this.dir,
      env: { ...this.env, ...opts.env },
    });
  }
}

/** How to build a {@linkcode Sandbox}. */
export interface SandboxOptions {
  /**
   * The datastore every repository is initialised with, e.g.
   * `s3://bucket/prefix` (default: `filesystem:` a directory in the sandbox,
   * inspectable through {@linkcode Sandbox.datastore}).
   */
  datastoreSpec?: string;
  /** Environment given to every CLI run in the sandbox (e.g. AWS credentials). */
  env?: Record<string, string>;
}

/** Temporary directories for one test: a root holding repositories and a datastore. */
export class Sandbox {
  readonly #procs: CliProcess[] = [];
  readonly #spec: string | undefined;
  /** The filesystem datastore (unused when another `datastoreSpec` was given). */
  readonly datastore: Datastore;
  /** Environment given to every CLI run in the sandbox. */
  readonly env: Record<string, string>;

  private constructor(readonly root: string, opts: SandboxOptions) {
    this.datastore = new Datastore(join(root, "datastore"));
    this.#spec = opts.datastoreSpec;
    this.env = { ...opts.env };
  }

  /** A fresh sandbox under the system temp directory. */
  static async create(opts: SandboxOptions = {}): Promise<Sandbox> {
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "modelsync-e2e-" }));
    return new Sandbox(root, opts);
  }

  /** The datastore spec to pass to the CLI. */
  get datastoreSpec(): string {
    return this.#spec ?? `filesystem:${this.datastore.dir}`;
  }

  /** A new empty directory in the sandbox. */
  async dir(name: string): Promise<string> {
    const d = join(this.root, name);
    await Deno.mkdir(d, { recursive: true });
    return d;
  }

  /**
   * A new repository initialised with `modelsync init --datastore <sandbox datastore>`.
   * `env` is given to every CLI run in it (e.g. MODELSYNC_HOLDER).
   */
  async repo(name: string, env: Record<string, string> = {}): Promise<Repo> {
    const dir = await this.dir(name);
    const repo = new Repo(this, dir, env);
    expectCode(await repo.run(["init", "--datastore", this.datastoreSpec]), 0, `init ${name}`);
    return repo;
  }

  /** Starts the CLI in the background; it is killed when the sandbox is disposed. */
  spawn(args: string[], opts: RunOptions & { cwd: string }): CliProcess {
    const p = new CliProcess(args, { ...opts, env: { ...this.env, ...opts.env } });
    this.#procs.push(p);
    return p;
  }

  /** Runs the CLI in `cwd` and waits for it. */
  run(args: string[], opts: RunOptions & { cwd: string }): Promise<RunResult> {
    return this.spawn(args, opts).done;
  }

  /** Kills every process still running, waits for them, removes the directories. */
  async dispose(): Promise<void> {
    for (const p of this.#procs) p.kill("SIGKILL");
    await Promise.allSettled(this.#procs.map((p) => p.done));
    await Deno.remove(this.root, { recursive: true }).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}

/** Writes `count` files of `size` bytes each (distinct contents) under a model directory. */
export async function writeModelFiles(
  repo: Repo,
  model: string,
  opts: { count: number; size: number; seed?: number; prefix?: string },
): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  for (let i = 0; i < opts.count; i++) {
    const rel = `${opts.prefix ?? "part"}-${String(i).padStart(3, "0")}.bin`;
    const bytes = pseudoRandomBytes(opts.size, (opts.seed ?? 1) * 100_003 + i + 1);
    await repo.write(`models/${model}/${rel}`, bytes);
    files.set(rel, bytes);
  }
  return files;
}

/** The test decorator of tests/fixtures/slow_store.ts. */
/** Short deadlines for fault tests: each call, each lock wait, the whole run as a backstop. */
export const FAULT_DEADLINES: readonly string[] = [
  "--call-timeout",
  "1s",
  "--lock-timeout",
  "2s",
  "--timeout",
  "60s",
];

export const SLOW_STORE: string = join(ROOT, "tests/fixtures/slow_store.ts");

/**
 * Arguments and environment that make one CLI run open the sandbox's
 * datastore (or `inner`: a spec, or a datastore mapping as JSON) through the
 * slow-store decorator (tests/fixtures/slow_store.ts), e.g. `{ head: 3000 }`
 * holds a push's lock for 3 s before it reads its head, `{ putBlob: 300 }`
 * slows each upload, `{ land: 200 }` each file a pull lands. Other runs of
 * the test open the datastore directly.
 */
export function slowStore(
  sb: Sandbox,
  delays: { putBlob?: number; getBlob?: number; head?: number; commit?: number; land?: number },
  opts: { inner?: string } = {},
): { args: string[]; env: Record<string, string> } {
  return {
    args: ["--datastore", `module:${SLOW_STORE}`],
    env: {
      MODELSYNC_TEST_SLOW_INNER: opts.inner ?? sb.datastoreSpec,
      MODELSYNC_TEST_SLOW: Object.entries(delays).map(([k, v]) => `${k}=${v}`).join(","),
    },
  };
}
