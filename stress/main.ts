/**
 * `deno task stress`: the seeded reliability run (README "Reliability").
 * On every datastore of `_common.ts` that is available here (or the ones
 * named with `--datastore`): the concurrent workload, crash trials and
 * fencing trials, each on a fresh datastore, then a summary with the seed.
 * Exits 1 when any property was violated, printing the command that reruns
 * the same choices.
 *
 * ```sh
 * deno task stress                                  # the default, a few minutes
 * deno task stress --seed 7 --writers 8 --rounds 40 --crash-trials 120 --fencing 8
 * deno task stress --datastore s3 --crash-trials 0  # only the workload and fencing, on S3
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { DATASTORES, randomSeed, Rng, selectDatastores } from "./_common.ts";
import { runCrashTrials } from "./crash.ts";
import { runFencing } from "./fencing.ts";
import { type PhaseResult, runWorkload } from "./workload.ts";

/** What a stress run does. */
export interface StressOptions {
  seed: number;
  writers: number;
  rounds: number;
  models: number;
  /** Processes killed at a crash point, per datastore. */
  crashTrials: number;
  /** Fencing trials per datastore. */
  fencing: number;
  /** Datastore names (empty: every available one). */
  datastores: string[];
  /** Keep the temporary directories. */
  keep: boolean;
  /** Progress lines (stderr). */
  log?: (line: string) => void;
}

/** One phase on one datastore. */
export interface PhaseReport extends PhaseResult {
  datastore: string;
  phase: "workload" | "crash" | "fencing";
  ms: number;
}

/** The result of a run. */
export interface StressSummary {
  seed: number;
  phases: PhaseReport[];
  /** Datastores not run here, and why. */
  skipped: { datastore: string; reason: string }[];
  violations: string[];
}

/** Defaults of `deno task stress` without options. */
export const DEFAULTS: Omit<StressOptions, "seed"> = {
  writers: 4,
  rounds: 20,
  models: 3,
  crashTrials: 40,
  fencing: 4,
  datastores: [],
  keep: false,
};

/** Runs every phase on every selected datastore. */
export async function runStress(o: StressOptions): Promise<StressSummary> {
  const log = o.log ?? (() => {});
  const root = new Rng(o.seed);
  const summary: StressSummary = { seed: o.seed, phases: [], skipped: [], violations: [] };
  const explicit = o.datastores.length > 0;
  for (const entry of selectDatastores(o.datastores)) {
    const reason = entry.unavailable();
    if (reason !== null) {
      if (explicit) throw new Error(`Datastore ${entry.name} is not available: ${reason}.`);
      summary.skipped.push({ datastore: entry.name, reason });
      log(`${entry.name}: skipped (${reason})`);
      continue;
    }
    const phases: [PhaseReport["phase"], boolean, () => Promise<PhaseResult>][] = [
      ["workload", o.rounds > 0, () =>
        runWorkload({
          entry,
          writers: o.writers,
          rounds: o.rounds,
          models: o.models,
          rng: root.fork(`${entry.name}/workload`),
          keep: o.keep,
        })],
      ["crash", o.crashTrials > 0, () =>
        runCrashTrials({
          entry,
          kills: o.crashTrials,
          rng: root.fork(`${entry.name}/crash`),
          keep: o.keep,
          log,
        })],
      ["fencing", o.fencing > 0, () =>
        runFencing({
          entry,
          trials: o.fencing,
          rng: root.fork(`${entry.name}/fencing`),
          keep: o.keep,
          log,
        })],
    ];
    for (const [phase, wanted, run] of phases) {
      if (!wanted) continue;
      const started = Date.now();
      log(`${entry.name}: ${phase}…`);
      const r = await run();
      const report = { datastore: entry.name, phase, ms: Date.now() - started, ...r };
      summary.phases.push(report);
      summary.violations.push(...r.violations);
      log(
        `${entry.name}: ${phase} done in ${(report.ms / 1000).toFixed(1)} s, ` +
          `${r.violations.length} violation(s)`,
      );
    }
  }
  return summary;
}

/** The summary as text. */
export function formatSummary(s: StressSummary, o: StressOptions): string[] {
  const out = [
    `modelsync stress run, seed ${s.seed}: ${o.writers} writers × ${o.rounds} rounds on ` +
    `${o.models} models, ${o.crashTrials} crash kills and ${o.fencing} fencing trials ` +
    `per datastore`,
  ];
  for (const p of s.phases) {
    out.push(`${p.datastore} ${p.phase} (${(p.ms / 1000).toFixed(1)} s):`);
    for (const [k, v] of Object.entries(p.counts).sort(([a], [b]) => (a < b ? -1 : 1))) {
      out.push(`  ${k}: ${v}`);
    }
    if (p.dir !== undefined) out.push(`  kept in ${p.dir}`);
  }
  for (const k of s.skipped) out.push(`${k.datastore}: skipped (${k.reason})`);
  if (s.violations.length === 0) out.push("No property violated.");
  else {
    out.push(`${s.violations.length} violated propert${s.violations.length === 1 ? "y" : "ies"}:`);
    for (const v of s.violations) out.push(`- ${v}`);
  }
  return out;
}

/** The command that reruns the same choices. */
export function rerunCommand(o: StressOptions): string {
  return [
    "deno task stress",
    `--seed ${o.seed}`,
    `--writers ${o.writers}`,
    `--rounds ${o.rounds}`,
    `--models ${o.models}`,
    `--crash-trials ${o.crashTrials}`,
    `--fencing ${o.fencing}`,
    ...o.datastores.map((d) => `--datastore ${d}`),
  ].join(" ");
}

function count(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw new Error(`--${name}: ${JSON.stringify(text)} is not a count`);
  return Number(text);
}

/** Thrown by {@linkcode parseOptions} for `--help`. */
export class HelpRequested extends Error {}

/** What `--help` prints. */
export const USAGE = `Usage: deno task stress [options]

  --seed N           seed of every choice (default: random, printed first)
  --writers N        repositories working at the same time (default ${DEFAULTS.writers})
  --rounds N         workload rounds per writer; 0 skips the workload (default ${DEFAULTS.rounds})
  --models N         shared models (default ${DEFAULTS.models})
  --crash-trials N   processes to kill at a crash point, per datastore (default ${DEFAULTS.crashTrials})
  --fencing N        fencing trials per datastore (default ${DEFAULTS.fencing})
  --datastore NAME   only this datastore (repeatable): ${DATASTORES.map((d) => d.name).join(", ")}
  --keep             keep the temporary directories

Exits 1 when a property was violated, printing the command that reruns the same choices.`;

/** Parses the command line. */
export function parseOptions(args: string[]): StressOptions {
  const { values } = parseArgs({
    args,
    options: {
      seed: { type: "string" },
      writers: { type: "string" },
      rounds: { type: "string" },
      models: { type: "string" },
      "crash-trials": { type: "string" },
      fencing: { type: "string" },
      datastore: { type: "string", multiple: true },
      keep: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) throw new HelpRequested();
  const o: StressOptions = {
    seed: count(values.seed, "seed", randomSeed()),
    writers: count(values.writers, "writers", DEFAULTS.writers),
    rounds: count(values.rounds, "rounds", DEFAULTS.rounds),
    models: count(values.models, "models", DEFAULTS.models),
    crashTrials: count(values["crash-trials"], "crash-trials", DEFAULTS.crashTrials),
    fencing: count(values.fencing, "fencing", DEFAULTS.fencing),
    datastores: values.datastore ?? [],
    keep: values.keep === true,
  };
  if (o.writers < 2) throw new Error("--writers: at least 2 (they share models)");
  if (o.models < 1) throw new Error("--models: at least 1");
  return o;
}

if (import.meta.main) {
  let o: StressOptions;
  try {
    o = parseOptions(Deno.args);
  } catch (err) {
    if (err instanceof HelpRequested) {
      console.log(USAGE);
      Deno.exit(0);
    }
    console.error(`stress: ${(err as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  const started = Date.now();
  console.error(`stress: seed ${o.seed}`);
  let s: StressSummary;
  try {
    s = await runStress({ ...o, log: (line) => console.error(`stress: ${line}`) });
  } catch (err) {
    // A datastore named with --datastore that is not available here, or a
    // failure of the harness itself (not a property of modelsync).
    console.error(`stress: ${(err as Error).message}`);
    Deno.exit(2);
  }
  for (const line of formatSummary(s, o)) console.log(line);
  console.log(`Total ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  if (s.violations.length > 0) {
    console.log(`Rerun the same choices with: ${rerunCommand(o)}`);
    Deno.exit(1);
  }
}
