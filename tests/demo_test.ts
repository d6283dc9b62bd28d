/**
 * End to end: `deno task demo` runs the real CLI against a filesystem
 * datastore and succeeds, showing both flushes and both pulls.
 *
 * @module
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const PROJECT = dirname(dirname(fileURLToPath(import.meta.url)));

Deno.test("demo runs the real CLI end to end and exits 0", async () => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (!k.startsWith("MODELSYNC_")) env[k] = v;
  }
  env.NO_COLOR = "1";
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", join(PROJECT, "scripts", "demo.ts")],
    cwd: PROJECT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `demo exited with ${out.code}:\n${text}`);
  for (
    const heading of [
      "==> alice: modelsync init",
      "==> bob: modelsync init",
      "==> alice: modelsync flush",
      "==> bob: modelsync flush",
      "==> alice: modelsync caps",
      "==> alice: modelsync lock status",
      "==> alice: modelsync pull audio/whisper",
      "==> bob: modelsync pull vision/resnet @acme/nlp/bert",
    ]
  ) {
    assert.ok(text.includes(heading), `demo output lacks "${heading}":\n${text}`);
  }
  assert.match(text, /ok: alice -> bob vision\/resnet: 5 files/);
  assert.match(text, /ok: bob -> alice audio\/whisper: 3 files/);
  assert.match(text, /demo: removed the temporary directory (\S+)/);
  const tmp = text.match(/demo: removed the temporary directory (\S+)/)![1];
  await assert.rejects(Deno.stat(tmp), Deno.errors.NotFound);
});
