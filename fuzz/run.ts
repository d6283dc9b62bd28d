/**
 * The fuzzer's loop: for each target, `cases` inputs through the parser in
 * this process and `cli` inputs through the real CLI, every one from its own
 * seeded generator (seed, target, case index), so any failure reruns alone.
 *
 * @example
 * ```ts ignore
 * import { runFuzz } from "./run.ts";
 * const report = await runFuzz({ seed: 1, cases: 100, cli: 1 });
 * console.log(report.failures.length);
 * ```
 * @module
 */
import { CliFuzzer } from "./_cli.ts";
import { Rng } from "./_rng.ts";
import { type Target, TARGETS } from "./targets.ts";

/** What to run. */
export interface FuzzOptions {
  seed: number;
  /** In-process cases per target. */
  cases: number;
  /** CLI cases per target. */
  cli: number;
  /** Only these targets (default: all). */
  targets?: string[];
  /** Only this case index (to rerun a failure). */
  only?: number;
  /** Called after each target. */
  onTarget?: (t: TargetReport) => void;
}

/** One failing case. */
export interface Failure {
  target: string;
  kind: "in-process" | "cli";
  index: number;
  input: string;
  problem: string;
}

/** What one target did. */
export interface TargetReport {
  target: string;
  what: string;
  cases: number;
  /** In-process cases the parser accepted (the rest it refused with a proper error). */
  accepted: number;
  cliCases: number;
  cliRuns: number;
  /** Exit code -> CLI runs that ended with it. */
  exitCodes: Record<number, number>;
  failures: number;
  ms: number;
}

/** The whole run. */
export interface FuzzReport {
  seed: number;
  targets: TargetReport[];
  failures: Failure[];
}

/** The targets named (all when none), or throws naming an unknown one. */
export function selectTargets(names?: string[]): Target[] {
  if (names === undefined || names.length === 0) return [...TARGETS];
  return names.map((n) => {
    const t = TARGETS.find((x) => x.name === n);
    if (t === undefined) {
      throw new Error(`unknown target ${n}: one of ${TARGETS.map((x) => x.name).join(", ")}`);
    }
    return t;
  });
}

function indices(n: number, only?: number): number[] {
  if (only !== undefined) return only < n ? [only] : [];
  return Array.from({ length: n }, (_, i) => i);
}

/** Runs the fuzzer. */
export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const targets = selectTargets(opts.targets);
  const failures: Failure[] = [];
  const reports: TargetReport[] = [];
  const cli = opts.cli > 0 ? await CliFuzzer.create() : undefined;
  try {
    for (const t of targets) {
      const started = Date.now();
      const before = failures.length;
      const report: TargetReport = {
        target: t.name,
        what: t.what,
        cases: 0,
        accepted: 0,
        cliCases: 0,
        cliRuns: 0,
        exitCodes: {},
        failures: 0,
        ms: 0,
      };
      for (const i of indices(opts.cases, opts.only)) {
        const input = t.generate(Rng.forCase(opts.seed, t.name, i));
        let problem: string | undefined;
        try {
          const v = await t.check(input);
          problem = v.problem;
          if (v.accepted) report.accepted++;
        } catch (err) {
          problem = `the check itself failed: ${(err as Error).stack ?? err}`;
        }
        report.cases++;
        if (problem !== undefined) {
          failures.push({ target: t.name, kind: "in-process", index: i, input, problem });
        }
      }
      if (cli !== undefined) {
        for (const i of indices(opts.cli, opts.only)) {
          const rng = Rng.forCase(opts.seed, `${t.name}:cli`, i);
          const input = t.generate(rng);
          const outcome = await cli.run(`${t.name}-${i}`, t.place(input, rng));
          report.cliCases++;
          report.cliRuns += outcome.codes.length;
          for (const c of outcome.codes) report.exitCodes[c] = (report.exitCodes[c] ?? 0) + 1;
          for (const problem of outcome.problems) {
            failures.push({ target: t.name, kind: "cli", index: i, input, problem });
          }
        }
      }
      report.failures = failures.length - before;
      report.ms = Date.now() - started;
      reports.push(report);
      opts.onTarget?.(report);
    }
  } finally {
    await cli?.dispose();
  }
  return { seed: opts.seed, targets: reports, failures };
}
