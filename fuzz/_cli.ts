/**
 * CLI cases of the fuzzer: the real `modelsync` as a subprocess, in a fresh
 * copy of a small repository and filesystem datastore (built once with the
 * CLI: two models, one with two commits), with the fuzzed input put where
 * the target says, and the target's commands run one after another.
 *
 * Property of every run: a documented exit code (SPEC §6; never 1, never a
 * signal, never a hang), at most one `modelsync: error:` line and no stack
 * trace on stderr, every stderr line from modelsync itself; and nothing
 * written outside the repository (and, for commands that push, nothing
 * corrupt written to the datastore).
 *
 * @module
 */
import { join } from "node:path";
import {
  CliProcess,
  Datastore,
  describe,
  type RunResult,
  snapshot,
  writeRecordDir,
} from "../tests/_helpers.ts";
import type { Placement } from "./targets.ts";

/** Exit codes a CLI run may end with (SPEC §6); 1 means a bug. */
export const DOCUMENTED_EXIT_CODES: ReadonlySet<number> = new Set([0, 2, 3, 4, 5, 6, 75]);

/** A run taking longer than this is a hang. */
const RUN_TIMEOUT_MS = 60_000;

/** What one CLI case saw. */
export interface CliOutcome {
  /** What is wrong, each with the run it came from. */
  problems: string[];
  /** The exit code of each command. */
  codes: number[];
}

/** The problem with one CLI run, or undefined. */
export function runProblem(res: RunResult): string | undefined {
  if (res.signal !== null) return `ended by signal ${res.signal}`;
  if (!DOCUMENTED_EXIT_CODES.has(res.code)) return `exit ${res.code}`;
  const lines = res.stderr.split("\n").filter((l) => l.trim() !== "");
  if (
    lines.some((l) => /^\s+at .*:\d+:\d+\)?$/.test(l)) ||
    /Uncaught|Stack backtrace/.test(res.stderr)
  ) {
    return "a stack trace on stderr";
  }
  const errors = lines.filter((l) => l.startsWith("modelsync: error: "));
  if (errors.length > 1) return `${errors.length} error lines`;
  if (res.code !== 0 && errors.length === 0 && !/^(4|5)$/.test(String(res.code))) {
    return `exit ${res.code} without an error line`;
  }
  // deno-lint-ignore no-control-regex
  const control = lines.find((l) => /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(l));
  if (control !== undefined) return `a control character on stderr: ${JSON.stringify(control)}`;
  const stray = lines.find((l) => !l.startsWith("modelsync: "));
  if (stray !== undefined) return `a stderr line not from modelsync: ${JSON.stringify(stray)}`;
  return undefined;
}

function outside(
  snap: Record<string, string>,
  opts: { datastore: boolean },
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(snap).filter(([rel]) =>
      rel !== "repo" && !rel.startsWith("repo/") &&
      !(opts.datastore && (rel === "datastore" || rel.startsWith("datastore/") ||
        rel === "datastore"))
    ),
  );
}

function diff(before: Record<string, string>, after: Record<string, string>): string[] {
  const out: string[] = [];
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (before[k] !== after[k]) {
      out.push(`${k}: ${before[k] ?? "absent"} -> ${after[k] ?? "absent"}`);
    }
  }
  return out.sort();
}

/** Runs the CLI cases of the fuzzer in copies of one template. */
export class CliFuzzer {
  private constructor(readonly root: string, readonly template: string) {}

  /** Builds the template repository and datastore with the real CLI. */
  static async create(): Promise<CliFuzzer> {
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "modelsync-fuzz-cli-" }));
    const template = join(root, "template");
    const repo = join(template, "repo");
    await Deno.mkdir(repo, { recursive: true });
    const fz = new CliFuzzer(root, template);
    const write = async (rel: string, text: string) => {
      await Deno.mkdir(join(repo, rel, ".."), { recursive: true });
      await Deno.writeTextFile(join(repo, rel), text);
    };
    await fz.#must(repo, ["init", "--datastore", "filesystem:../datastore"]);
    await write("models/vpc/m1/a.txt", "hello\n");
    await write("models/vpc/m1/dir/b.bin", "b".repeat(600_000));
    await write("models/vpc/m1/dir/small.json", '{"x": 1}\n');
    await write("models/vpc/m2/c.txt", "another model\n");
    await fz.#must(repo, ["push"]);
    await write("models/vpc/m1/a.txt", "hello again\n");
    await fz.#must(repo, ["push"]);
    return fz;
  }

  async #must(cwd: string, args: string[]): Promise<void> {
    const res = await new CliProcess(args, { cwd }).done;
    if (res.code !== 0) throw new Error(`building the fuzz template failed\n${describe(res)}`);
  }

  /** One case: a fresh copy, the placement, its commands. */
  async run(name: string, placement: Placement): Promise<CliOutcome> {
    const box = join(this.root, name);
    const cp = await new Deno.Command("cp", { args: ["-a", this.template, box] }).output();
    if (!cp.success) throw new Error(`cp -a failed: ${new TextDecoder().decode(cp.stderr)}`);
    try {
      for (const w of placement.writes) {
        const path = join(box, w.path);
        if (w.record) {
          await writeRecordDir(path, w.text);
        } else {
          await Deno.mkdir(join(path, ".."), { recursive: true });
          await Deno.writeTextFile(path, w.text);
        }
      }
      const ds = new Datastore(join(box, "datastore"));
      const cleanBefore = placement.writesDatastore && (await ds.integrityProblems()).length === 0;
      const before = await snapshot(box);
      const problems: string[] = [];
      const codes: number[] = [];
      for (const args of placement.commands) {
        const res = await this.#run(join(box, "repo"), args);
        codes.push(res.code);
        const p = runProblem(res) ??
          (placement.secret !== undefined &&
              (res.stdout + res.stderr).includes(placement.secret)
            ? "the secret was printed"
            : undefined);
        if (p !== undefined) problems.push(`${p}\n${describe(res)}`);
      }
      const after = await snapshot(box);
      const changed = diff(
        outside(before, { datastore: placement.writesDatastore === true }),
        outside(after, { datastore: placement.writesDatastore === true }),
      );
      if (changed.length > 0) {
        problems.push(`written outside the repository: ${changed.slice(0, 5).join("; ")}`);
      }
      if (cleanBefore) {
        const bad = await ds.integrityProblems();
        if (bad.length > 0) problems.push(`the datastore was left inconsistent: ${bad[0]}`);
      }
      return { problems, codes };
    } finally {
      await Deno.remove(box, { recursive: true }).catch(() => {});
    }
  }

  async #run(cwd: string, args: string[]): Promise<RunResult> {
    const p = new CliProcess(args, { cwd });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const hung = new Promise<"hung">((r) => (timer = setTimeout(() => r("hung"), RUN_TIMEOUT_MS)));
    const first = await Promise.race([p.done, hung]);
    clearTimeout(timer);
    if (first === "hung") {
      p.kill("SIGKILL");
      const res = await p.done;
      return { ...res, stderr: `${res.stderr}\n(hung: killed after ${RUN_TIMEOUT_MS} ms)` };
    }
    return first;
  }

  /** Removes the template and every copy. */
  async dispose(): Promise<void> {
    await Deno.remove(this.root, { recursive: true }).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
