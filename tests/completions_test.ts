/**
 * Shell completion (issue 14 point 2): bash's own completion machinery runs
 * the generated script (COMP_WORDS, COMP_CWORD, COMP_LINE, the completion
 * function, COMPREPLY), with `modelsync` on PATH as a user installs it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliEnv, describe, expectCode, MAIN, type Repo, Sandbox } from "./_helpers.ts";

/** A `modelsync` command on PATH that runs this checkout. */
async function installShim(sb: Sandbox): Promise<string> {
  const bin = await sb.dir("bin");
  const shim = join(bin, "modelsync");
  await Deno.writeTextFile(
    shim,
    `#!/bin/sh\nexec '${Deno.execPath()}' run -A --quiet '${MAIN}' "$@"\n`,
  );
  await Deno.chmod(shim, 0o755);
  return bin;
}

/** What bash completes for `line` (the word under the cursor is its last). */
async function complete(repo: Repo, bin: string, line: string): Promise<string[]> {
  const words = line.split(" ");
  const script = [
    "source <(modelsync completions bash) || exit 9",
    `COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")})`,
    `COMP_CWORD=${words.length - 1}`,
    `COMP_LINE='${line}'`,
    "COMP_POINT=${#COMP_LINE}",
    `fn=$(complete -p modelsync | sed -E 's/.* -F ([^ ]+) .*/\\1/')`,
    `"$fn" modelsync "${words.at(-1)}" "${words.at(-2) ?? ""}"`,
    `printf '%s\\n' "\${COMPREPLY[@]}"`,
  ].join("\n");
  const env = cliEnv({ PATH: `${bin}:${Deno.env.get("PATH") ?? ""}` });
  const out = await new Deno.Command("bash", {
    args: ["-c", script],
    cwd: repo.dir,
    env,
    clearEnv: true,
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, `bash failed: ${new TextDecoder().decode(out.stderr)}`);
  return text.split("\n").filter((l) => l !== "").sort();
}

Deno.test("bash completes modelsync pu to pull and push, options, and model refs", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const bin = await installShim(sb);
  await a.write("models/vision/resnet/w.txt", "w");
  await a.write("models/vision/vit/w.txt", "w");
  await a.write("models/@acme/nlp/bert/w.txt", "w");

  assert.deepEqual(await complete(a, bin, "modelsync pu"), ["pull", "push"]);
  assert.deepEqual(await complete(a, bin, "modelsync push vision/r"), ["vision/resnet"]);
  assert.deepEqual(await complete(a, bin, "modelsync status @"), ["@acme/nlp/bert"]);
  assert.deepEqual(await complete(a, bin, "modelsync --jobs 4 pull vi"), [
    "vision/resnet",
    "vision/vit",
  ]);
  assert.deepEqual(await complete(a, bin, "modelsync push --jo"), ["--jobs"]);
  assert.deepEqual(await complete(a, bin, "modelsync --progress j"), ["json"]);
  assert.deepEqual(await complete(a, bin, "modelsync lock re"), ["release"]);
  assert.deepEqual(await complete(a, bin, "modelsync completions f"), ["fish"]);

  // A model pulled here earlier (its base) completes even after its folder is gone.
  expectCode(await a.run(["push"]), 0);
  await Deno.remove(a.path("models/vision/vit"), { recursive: true });
  assert.deepEqual(await complete(a, bin, "modelsync pull vision/v"), ["vision/vit"]);
});

Deno.test("completions zsh and fish print scripts built from the same command tree", async () => {
  await using sb = await Sandbox.create();
  const dir = await sb.dir("nowhere");
  const zsh = expectCode(await sb.run(["completions", "zsh"], { cwd: dir }), 0);
  assert.match(zsh.stdout, /^#compdef modelsync/, describe(zsh));
  assert.match(zsh.stdout, /bashcompinit/, describe(zsh));
  const fish = expectCode(await sb.run(["completions", "fish"], { cwd: dir }), 0);
  assert.match(fish.stdout, /complete -c modelsync .* -a 'push'/, describe(fish));
  assert.match(fish.stdout, /__complete models/, describe(fish));
  const bad = await sb.run(["completions", "tcsh"], { cwd: dir });
  expectCode(bad, 2);
});
