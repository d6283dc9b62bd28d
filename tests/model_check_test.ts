/**
 * The model of the lock protocol (model/locks.pml, design/model.md) checked
 * with spin: every case of `model/check.sh ci` must pass, and every negative
 * control (the protocol with one safeguard removed) must produce the
 * counterexample it was written for, so the checks can fail.
 *
 * spin comes from Debian (`apt-get install -y spin`); `model/check.sh tools`
 * installs it when it can. Without it these tests are ignored with a hint,
 * except in CI (MODELSYNC_TEST_REQUIRE_SERVICES=1), where they fail.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const CHECK = fileURLToPath(new URL("../model/check.sh", import.meta.url));

function runSync(args: string[]): { code: number; stdout: string; stderr: string } {
  const out = new Deno.Command(CHECK, { args, stdout: "piped", stderr: "piped" }).outputSync();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

function toolsOptions(): { ignore: boolean } {
  const tools = runSync(["tools"]);
  if (tools.code === 0) return { ignore: false };
  const why = tools.stderr.trim();
  if (Deno.env.get("MODELSYNC_TEST_REQUIRE_SERVICES") === "1") {
    throw new Error(`${why} (MODELSYNC_TEST_REQUIRE_SERVICES=1: the model check must run)`);
  }
  console.error(`Model check tests ignored: ${why}`);
  return { ignore: true };
}

interface CaseResult {
  name: string;
  status: string;
  verdict: string;
  expected: string;
  states: number;
}

function parseResult(stdout: string): CaseResult {
  const line = stdout.split("\n").find((l) => l.startsWith("RESULT "));
  assert.ok(line !== undefined, `no RESULT line in:\n${stdout}`);
  const [, name, status, verdict, ...fields] = line.split(" ");
  const kv = Object.fromEntries(fields.map((f) => f.split("=") as [string, string]));
  return { name, status, verdict, expected: kv.expected, states: Number(kv.states) };
}

const options = toolsOptions();
const cases = runSync(["list", "ci"]).stdout.split("\n").filter((n) => n !== "");

Deno.test("model/check.sh lists the protocol cases and a negative control for each property", () => {
  for (const name of ["scoped", "paths", "deadlock", "liveness", "renewals"]) {
    assert.ok(cases.includes(name), `case ${name} is in the ci set`);
  }
  for (const name of ["no-confirm", "no-cas", "no-recheck", "no-drain", "hold-and-wait"]) {
    assert.ok(cases.includes(`control-${name}`), `control ${name} is in the ci set`);
  }
});

for (const name of cases) {
  const control = name.startsWith("control-");
  Deno.test({
    name: control
      ? `model check: ${name} gives its counterexample`
      : `model check: ${name} holds (spin, exhaustive)`,
    ...options,
  }, async () => {
    const out = await new Deno.Command(CHECK, {
      args: ["case", name],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    const r = parseResult(stdout);
    assert.equal(r.name, name);
    if (control) {
      assert.notEqual(r.expected, "pass", "a control expects a counterexample");
    } else {
      assert.equal(r.expected, "pass");
      assert.ok(r.states > 1_000, `the search explored ${r.states} states`);
    }
    assert.equal(r.verdict, r.expected, `${name}: spin said ${r.verdict}\n${stderr}`);
    assert.equal(r.status, "ok");
    assert.equal(out.code, 0, stderr);
  });
}
