/**
 * The CI-sized run of the fuzzer (fuzz/, design/fuzz.md): a fixed seed, a
 * few hundred inputs per target through modelsync's parsers in this process
 * and one per target through the real CLI. `deno task fuzz` runs more.
 *
 * @module
 */
import assert from "node:assert/strict";
import { CorruptError, UsageError } from "../src/errors.ts";
import { CliFuzzer, runProblem } from "../fuzz/_cli.ts";
import { type FuzzReport, runFuzz } from "../fuzz/run.ts";
import { errorProblem, TARGETS } from "../fuzz/targets.ts";

const SEED = 20_261_204;

function failures(report: FuzzReport): string {
  return report.failures.map((f) =>
    `${f.target} ${f.kind} case ${f.index} (rerun: deno task fuzz --seed ${report.seed} ` +
    `--target ${f.target} --case ${f.index}${f.kind === "cli" ? " --cli 1" : ""}): ` +
    `${f.problem}\ninput: ${JSON.stringify(f.input).slice(0, 1_000)}`
  ).join("\n\n");
}

Deno.test("fuzz: the properties catch what they are meant to catch", () => {
  assert.match(errorProblem(new TypeError("x is undefined"))!, /^unhandled TypeError/);
  assert.match(errorProblem(new UsageError("two\nlines"))!, /several lines/);
  assert.match(errorProblem(new CorruptError("has Fz-secret"), "Fz-secret")!, /secret/);
  assert.equal(errorProblem(new CorruptError("Manifest of a/b is not valid JSON.")), undefined);
  const run = { signal: null, stdout: "", args: ["status"], json: () => ({}) };
  assert.match(runProblem({ ...run, code: 1, stderr: "modelsync: error: boom\n" })!, /exit 1/);
  assert.match(
    runProblem({
      ...run,
      code: 2,
      stderr: "modelsync: error: x\n    at parse (file:///src/a.ts:1:2)\n",
    })!,
    /stack trace/,
  );
  assert.match(
    runProblem({ ...run, code: 2, stderr: "modelsync: error: a\nmodelsync: error: b\n" })!,
    /2 error lines/,
  );
  assert.match(runProblem({ ...run, code: 0, stderr: "(node:1) Warning: x\n" })!, /not from/);
  assert.match(
    runProblem({ ...run, code: 2, stderr: "modelsync: error: bad \u009b31m\n" })!,
    /control character/,
  );
  assert.match(runProblem({ ...run, code: 9, stderr: "" })!, /exit 9/);
  assert.equal(
    runProblem({ ...run, code: 6, stderr: "modelsync: warning: w\nmodelsync: error: e\n" }),
    undefined,
  );
});

Deno.test("fuzz: 300 inputs per target through the parsers (seeded)", async () => {
  const report = await runFuzz({ seed: SEED, cases: 300, cli: 0 });
  assert.equal(report.targets.length, TARGETS.length);
  for (const t of report.targets) {
    assert.equal(t.cases, 300, t.target);
    // Inputs that reach past the first check: the mutations are not all rejected at once.
    assert.ok(t.accepted > 0, `${t.target}: no input was accepted`);
    assert.ok(
      t.accepted < t.cases || t.target.endsWith("lock"),
      `${t.target}: every input accepted`,
    );
  }
  assert.equal(report.failures.length, 0, failures(report));
});

Deno.test("fuzz: one input per target through the real CLI (seeded)", async () => {
  const report = await runFuzz({ seed: SEED, cases: 0, cli: 1 });
  for (const t of report.targets) assert.ok(t.cliRuns >= 1, t.target);
  assert.equal(report.failures.length, 0, failures(report));
});

Deno.test("fuzz: a CLI case that writes outside the repository is caught", async () => {
  await using cli = await CliFuzzer.create();
  // push writes to the datastore, which a read-only placement does not allow.
  const caught = await cli.run("outside", {
    writes: [{ path: "repo/models/vpc/m1/new.txt", text: "new\n" }],
    commands: [["push"]],
  });
  assert.deepEqual(caught.codes, [0]);
  assert.equal(caught.problems.length, 1, caught.problems.join("\n"));
  assert.match(caught.problems[0], /^written outside the repository: datastore\//);
  const allowed = await cli.run("allowed", {
    writes: [{ path: "repo/models/vpc/m1/new.txt", text: "new\n" }],
    commands: [["push"]],
    writesDatastore: true,
  });
  assert.deepEqual(allowed, { problems: [], codes: [0] });
});
