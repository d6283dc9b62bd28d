/**
 * `deno task bench`: builds synthetic repositories in a temporary directory,
 * runs modelsync and its peers (git, rclone, cp) on the same data in the same
 * run, interleaved, and prints a table of medians and ratios; writes
 * `bench/results/latest.json` (every raw sample, the machine) and
 * `bench/results/chart.svg` (figures 1 and 2).
 *
 * Options: `--quick` (smaller sizes, 3 runs, a few minutes), `--only 1,3`
 * (figures: 0 start-up, 1 head-of-line and 2 concurrency on a filesystem
 * datastore (context), 3 no-op push, 4 first push, 5 S3, 6 memory and lock
 * latency, 7 first pull, 8 one large file, 9 S3 + 30 ms throughput, 10 S3 +
 * 100 ms concurrency and head-of-line), `--runs N` (default 5, quick 3),
 * `--keep` (keep the temporary directories). Every row shows its target
 * (from the performance issue's table) and whether it is met.
 *
 * @example
 * ```sh
 * deno task bench --quick --only 1,2
 * ```
 * @module
 */
import { join } from "node:path";
import { BenchContext, sizesFor } from "./_context.ts";
import { hasGnuTime, memoryMethod, ROOT, toolVersion } from "./_run.ts";
import { chartSvg, panelsFromRows } from "./chart.ts";
import { bulkFigures } from "./figures/bulk.ts";
import { concurrencyFigure } from "./figures/concurrency.ts";
import { holFigure } from "./figures/hol.ts";
import { largeFigure } from "./figures/large.ts";
import { lockFigure, startupFigure } from "./figures/lock.ts";
import { s3Figure } from "./figures/s3.ts";
import { s3ConcurrencyFigure, s3ThroughputFigure } from "./figures/s3_latency.ts";
import { type Machine, notes, type Results, type Row, table } from "./report.ts";

const ALL = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"];
const USAGE = `Usage: deno task bench [--quick] [--only N,N] [--runs N] [--keep]

  --quick      smaller trees (10,000 files; S3 200 files; a 256 MiB large file), 3 runs
               (first push and pull 2) and no warm-up where the set-up already warmed
               up: a few minutes
  --only N,N   figures to run: 0 start-up, 1 head-of-line blocking and 2 concurrency
               (filesystem, context), 3 no-op push, 4 first push, 5 S3 (local server),
               6 memory and lock latency, 7 first pull, 8 one large file (2 GiB),
               9 S3 + 30 ms latency: first push, first pull, no-op requests,
               10 S3 + 100 ms latency: concurrent flushes, head-of-line blocking
  --runs N     measured runs per figure after one warm-up (default 5, quick 3; S3 first
               push and pull at most 2, S3 no-op at most 3: the local server is slow)
  --keep       keep the temporary directories
  --render F   run nothing: print the table of a saved results file (e.g.
               bench/results/full.json) and write latest.json and chart.svg from it

Every run writes bench/results/latest.json and chart.svg; a run of every figure
without failures also writes full.json or quick.json, so a quick run does not
lose the last full one.`;

/** Parsed command line. */
export interface Args {
  /** A saved results file to render instead of running. */
  render?: string;
  quick: boolean;
  only: Set<string>;
  runs: number;
  keep: boolean;
}

/** Parses the command line; throws a one-line message on a bad option. */
export function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, only: new Set(ALL), runs: 0, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--quick") args.quick = true;
    else if (a === "--render" || a.startsWith("--render=")) args.render = value();
    else if (a === "--keep") args.keep = true;
    else if (a === "--only" || a.startsWith("--only=")) {
      const figs = value().split(",").map((s) => s.trim()).filter((s) => s !== "");
      const bad = figs.filter((f) => !ALL.includes(f));
      if (bad.length > 0) throw new Error(`unknown figure ${bad.join(", ")}: use ${ALL.join(",")}`);
      args.only = new Set(figs);
    } else if (a === "--runs" || a.startsWith("--runs=")) {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1) throw new Error(`--runs needs a whole number ≥ 1`);
      args.runs = n;
    } else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  if (args.runs === 0) args.runs = args.quick ? 3 : 5;
  return args;
}

async function machine(peers: Record<string, string | null>): Promise<Machine> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const osRelease = await Deno.readTextFile("/etc/os-release").catch(() => "");
  return {
    cpu: cpuinfo.match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown",
    cores: navigator.hardwareConcurrency,
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30 * 10) / 10,
    os: `${osRelease.match(/PRETTY_NAME="?([^"\n]*)/)?.[1] ?? Deno.build.os}, ` +
      `kernel ${Deno.osRelease()}`,
    deno: Deno.version.deno,
    loadAverage: Deno.loadavg(),
    peers,
    memoryMethod: await memoryMethod(),
  };
}

/** Writes latest.json (and `copies`), chart.svg, and prints the table and the machine. */
async function publish(results: Results, copies: string[]): Promise<void> {
  const out = join(ROOT, "bench", "results");
  await Deno.mkdir(out, { recursive: true });
  const json = JSON.stringify(results, null, 2) + "\n";
  for (const name of ["latest.json", ...copies]) await Deno.writeTextFile(join(out, name), json);
  const mach = results.machine;
  const caption = `${results.mode} run, ${results.date.slice(0, 16).replace("T", " ")} UTC, ` +
    `${mach.cores} cores (${mach.cpu}), median of ${results.runs} interleaved runs`;
  await Deno.writeTextFile(join(out, "chart.svg"), chartSvg(panelsFromRows(results.rows), caption));
  console.log(table(results.rows));
  const notesText = notes(results.rows);
  if (notesText !== "") console.log(`\nNotes:\n${notesText}`);
  const load = (l?: number[]) => l?.[0]?.toFixed(1) ?? "?";
  console.log(
    `\n${results.mode} run, ${results.runs} runs per figure, ${results.durationS} s; ` +
      `${mach.cpu}, ${mach.cores} cores, ${mach.memoryGiB} GiB, ${mach.os}, deno ${mach.deno}; ` +
      `load average ${load(mach.loadAverage)} at start, ${load(mach.loadAverageEnd)} at end`,
  );
  console.log(`wrote bench/results/${["latest.json", ...copies].join(", ")} and chart.svg`);
}

async function main(): Promise<number> {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  let args: Args;
  try {
    args = parseArgs(Deno.args);
  } catch (err) {
    console.error(`bench: ${(err as Error).message}`);
    return 2;
  }
  if (args.render !== undefined) {
    const saved = JSON.parse(await Deno.readTextFile(args.render)) as Results;
    if (saved.schema !== "modelsync.bench/1") {
      console.error(`bench: ${args.render} is not a modelsync.bench/1 results file`);
      return 2;
    }
    await publish(saved, []);
    return 0;
  }
  const started = performance.now();
  await hasGnuTime();
  const ctx = await BenchContext.create({
    quick: args.quick,
    runs: args.runs,
    keep: args.keep,
    sizes: sizesFor(args.quick),
  });
  ctx.peers = {
    git: await toolVersion(["git", "--version"]),
    rclone: await toolVersion(["rclone", "--version"]),
    cp: await toolVersion(["cp", "--version"]),
  };
  const onInterrupt = () => {
    console.error(`bench: interrupted; removing ${ctx.root}`);
    if (!args.keep) Deno.removeSync(ctx.root, { recursive: true });
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  const mach = await machine(ctx.peers);
  ctx.log(
    `${args.quick ? "quick" : "full"} run, ${args.runs} runs per figure, in ${ctx.root}; ` +
      `${mach.cpu}, ${mach.cores} cores, load ${mach.loadAverage.map((l) => l.toFixed(2))}`,
  );
  const rows: Row[] = [];
  const errors: Results["errors"] = [];
  const figure = async (id: string, fn: () => Promise<Row[]>) => {
    const t0 = performance.now();
    try {
      rows.push(...await fn());
      ctx.log(`figure ${id} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      console.error(`bench: figure ${id} FAILED: ${message}`);
      errors.push({ figure: id, message });
      rows.push({
        figure: id,
        name: `figure ${id}`,
        unit: "s",
        samples: [],
        median: null,
        verdict: "FAIL",
        note: message.split("\n")[0].slice(0, 120),
      });
    }
  };
  const only = args.only;
  try {
    if (only.has("0")) await figure("0", () => startupFigure(ctx));
    if (only.has("6")) await figure("6", () => lockFigure(ctx));
    if (only.has("1")) await figure("1", () => holFigure(ctx));
    if (only.has("2")) await figure("2", () => concurrencyFigure(ctx));
    if (only.has("3") || only.has("4") || only.has("6") || only.has("7")) {
      await figure("3/4/7", () => bulkFigures(ctx, only));
    }
    if (only.has("8")) await figure("8", () => largeFigure(ctx));
    if (only.has("5")) await figure("5", () => s3Figure(ctx));
    if (only.has("9")) await figure("9", () => s3ThroughputFigure(ctx));
    if (only.has("10")) await figure("10", () => s3ConcurrencyFigure(ctx));
  } catch (err) {
    await ctx.cleanup();
    throw err;
  }
  rows.sort((a, b) => a.figure.localeCompare(b.figure, "en", { numeric: true }));
  mach.loadAverageEnd = Deno.loadavg();
  const durationS = Math.round((performance.now() - started) / 100) / 10;
  const results: Results = {
    schema: "modelsync.bench/1",
    date: new Date().toISOString(),
    mode: args.quick ? "quick" : "full",
    runs: args.runs,
    figures: [...only].sort((a, b) => Number(a) - Number(b)),
    durationS,
    machine: mach,
    sizes: { ...ctx.sizes },
    rows,
    errors,
  };
  // A partial run (--only) or one with a failed figure never replaces full.json or quick.json.
  const whole = ALL.every((f) => only.has(f)) && errors.length === 0;
  await publish(results, whole ? [`${results.mode}.json`] : []);
  await ctx.cleanup({ background: true });
  return errors.length > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
