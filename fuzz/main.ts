/**
 * `deno task fuzz`: seeded fuzzing of everything modelsync reads from a user
 * or a datastore (design/fuzz.md).
 *
 *   deno task fuzz [--seed N] [--cases N] [--cli N] [--target NAME]... [--case I]
 *
 * `--cases` inputs per target go through modelsync's parsers in this process,
 * `--cli` per target through the real CLI (default: cases / 100, at least 1).
 * Without `--seed` a seed is drawn and printed. Exits 1 when any case fails,
 * printing how to rerun it alone.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type Failure, runFuzz } from "./run.ts";

function count(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`fuzz: ${name} must be a whole number, got ${JSON.stringify(text)}`);
    Deno.exit(2);
  }
  return n;
}

function show(f: Failure, seed: number): string {
  const input = JSON.stringify(f.input);
  return [
    `FAILED ${f.target} ${f.kind} case ${f.index}`,
    `  rerun: deno task fuzz --seed ${seed} --target ${f.target} --case ${f.index}` +
    (f.kind === "cli" ? " --cli 1" : ""),
    `  input: ${
      input.length > 2_000 ? `${input.slice(0, 2_000)}… (${input.length} chars)` : input
    }`,
    `  ${f.problem.split("\n").join("\n  ")}`,
  ].join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seed: { type: "string" },
      cases: { type: "string" },
      cli: { type: "string" },
      target: { type: "string", multiple: true },
      case: { type: "string" },
    },
    strict: true,
  });
  const seed = count(values.seed, "--seed", Math.floor(Math.random() * 2 ** 31));
  const cases = count(values.cases, "--cases", 1_000);
  const cli = count(values.cli, "--cli", Math.max(1, Math.floor(cases / 100)));
  const only = values.case === undefined ? undefined : count(values.case, "--case", 0);
  console.log(`fuzz: seed ${seed}, ${cases} cases and ${cli} CLI cases per target`);
  const started = Date.now();
  const report = await runFuzz({
    seed,
    cases,
    cli,
    targets: values.target,
    only,
    onTarget: (t) => {
      const codes = Object.entries(t.exitCodes).map(([c, n]) => `${c}×${n}`).join(" ");
      console.log(
        `${t.target.padEnd(10)} ${String(t.cases).padStart(7)} cases ` +
          `(${String(t.accepted).padStart(6)} accepted)  ` +
          `${String(t.cliCases).padStart(4)} CLI cases (${t.cliRuns} runs${
            codes ? `: exit ${codes}` : ""
          })  ` +
          `${t.failures} failed  ${(t.ms / 1000).toFixed(1)} s  — ${t.what}`,
      );
    },
  });
  for (const f of report.failures) console.log(show(f, seed));
  const total = report.targets.reduce((n, t) => n + t.cases + t.cliCases, 0);
  console.log(
    `fuzz: seed ${seed}: ${total} cases, ${report.failures.length} failed, ` +
      `${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  Deno.exit(report.failures.length === 0 ? 0 : 1);
}
