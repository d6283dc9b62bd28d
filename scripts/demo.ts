/**
 * `deno task demo`: runs the real modelsync CLI end to end against a
 * filesystem datastore in a fresh temporary directory.
 *
 * Two repositories, alice and bob, share one datastore. Both write models,
 * flush different models at the same time, look at `caps`, `status` and
 * `lock status`, then pull each other's models; the demo checks that every
 * file arrived byte for byte. Pass `--keep` to keep the temporary directory.
 *
 * @example
 * ```sh
 * deno task demo
 * deno task demo --keep
 * ```
 * @module
 */
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const PROJECT = dirname(dirname(fileURLToPath(import.meta.url)));
const MAIN = join(PROJECT, "main.ts");
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The outcome of one CLI run. */
interface RunResult {
  who: string;
  args: string[];
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** A step that did not end as expected. */
class StepFailed extends Error {}

function say(line = ""): void {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
}

function heading(who: string, args: readonly string[]): void {
  say();
  say(`==> ${who}: modelsync ${args.join(" ")}`);
}

/** The environment for the CLI: ours, minus any MODELSYNC_* setting of the caller. */
function cliEnv(who: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (!k.startsWith("MODELSYNC_")) env[k] = v;
  }
  env.MODELSYNC_HOLDER = who;
  env.RUST_BACKTRACE = "0";
  return env;
}

/** Runs `modelsync ARGS` in `cwd` and captures its output. */
async function cli(who: string, cwd: string, args: string[]): Promise<RunResult> {
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    cwd,
    env: cliEnv(who),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    who,
    args,
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
    ms: Math.round(performance.now() - started),
  };
}

/** Prints what the CLI printed; fails the demo on an unexpected exit code. */
function show(r: RunResult, note = ""): void {
  const stdout = r.stdout.trimEnd();
  const stderr = r.stderr.trimEnd();
  if (stdout !== "") say(stdout);
  if (stderr !== "") {
    for (const line of stderr.split("\n")) say(`  [stderr] ${line}`);
  }
  say(`  (exit ${r.code}, ${r.ms} ms${note})`);
  if (r.code !== 0) {
    throw new StepFailed(
      `${r.who}: modelsync ${r.args.join(" ")} exited with ${r.code}, expected 0`,
    );
  }
}

/** One sequential step: heading, run, output. */
async function step(who: string, cwd: string, args: string[]): Promise<RunResult> {
  heading(who, args);
  const r = await cli(who, cwd, args);
  show(r);
  return r;
}

async function writeFile(path: string, data: Uint8Array | string, mode?: number): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  await Deno.writeFile(path, bytes, mode === undefined ? undefined : { mode });
  if (mode !== undefined) await Deno.chmod(path, mode);
}

function randomBytes(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let off = 0; off < size; off += 65536) {
    crypto.getRandomValues(out.subarray(off, Math.min(size, off + 65536)));
  }
  return out;
}

/** Every regular file under `dir`, as paths relative to it, sorted. */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile) out.push(relative(dir, p));
    }
  }
  await walk(dir);
  return out.sort();
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Checks that `to` holds exactly the files of `from`, byte for byte, with the same exec bit. */
async function verifyCopy(label: string, from: string, to: string): Promise<void> {
  const want = await listFiles(from);
  let got: string[];
  try {
    got = await listFiles(to);
  } catch (err) {
    throw new StepFailed(`${label}: ${to} is missing (${(err as Error).message})`);
  }
  if (want.join("\n") !== got.join("\n")) {
    throw new StepFailed(
      `${label}: file lists differ\n  expected: ${want.join(", ")}\n  got:      ${got.join(", ")}`,
    );
  }
  let bytes = 0;
  for (const rel of want) {
    const [a, b] = await Promise.all([
      Deno.readFile(join(from, rel)),
      Deno.readFile(join(to, rel)),
    ]);
    if (!sameBytes(a, b)) throw new StepFailed(`${label}: ${rel} differs`);
    const [sa, sb] = await Promise.all([Deno.stat(join(from, rel)), Deno.stat(join(to, rel))]);
    if (((sa.mode ?? 0) & 0o100) !== ((sb.mode ?? 0) & 0o100)) {
      throw new StepFailed(`${label}: ${rel} lost or gained its executable bit`);
    }
    bytes += a.length;
  }
  say(`  ok: ${label}: ${want.length} files, ${bytes} bytes identical`);
}

/** Writes alice's and bob's models. */
async function writeModels(alice: string, bob: string): Promise<void> {
  const resnet = join(alice, "models", "vision", "resnet");
  await writeFile(join(resnet, "config.json"), '{"arch": "resnet50", "classes": 1000}\n');
  await writeFile(join(resnet, "weights.bin"), randomBytes(2 * 1024 * 1024));
  await writeFile(join(resnet, "labels", "imagenet.txt"), "tench\ngoldfish\nshark\n");
  await writeFile(join(resnet, "labels", "extra", "notes.md"), "# Extra labels\n");
  await writeFile(join(resnet, "bin", "convert.sh"), "#!/bin/sh\necho convert\n", 0o755);

  const bert = join(alice, "models", "@acme", "nlp", "bert");
  await writeFile(join(bert, "config.json"), '{"layers": 12, "hidden": 768}\n');
  await writeFile(join(bert, "vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n");
  await writeFile(join(bert, "model.bin"), randomBytes(256 * 1024));

  const whisper = join(bob, "models", "audio", "whisper");
  await writeFile(join(whisper, "config.json"), '{"size": "tiny", "languages": 99}\n');
  await writeFile(join(whisper, "model.bin"), randomBytes(512 * 1024));
  await writeFile(join(whisper, "tokenizer", "tokens.txt"), "<|startoftranscript|>\n<|en|>\n");

  say();
  say("==> writing models");
  for (const [who, dir] of [["alice", alice], ["bob", bob]] as const) {
    for (const rel of await listFiles(join(dir, "models"))) {
      const size = (await Deno.stat(join(dir, "models", rel))).size;
      say(`  ${who}: models/${rel} (${size} bytes)`);
    }
  }
}

async function main(): Promise<number> {
  const keep = Deno.args.includes("--keep");
  const unknown = Deno.args.filter((a) => a !== "--keep");
  if (unknown.length > 0) {
    console.error(`demo: unknown argument ${unknown[0]}; usage: deno task demo [--keep]`);
    return 2;
  }

  const tmp = await Deno.makeTempDir({ prefix: "modelsync-demo-" });
  const datastore = join(tmp, "datastore");
  const alice = join(tmp, "alice");
  const bob = join(tmp, "bob");
  await Deno.mkdir(alice);
  await Deno.mkdir(bob);
  say(`modelsync demo in ${tmp}`);
  say(`  datastore: ${datastore}`);
  say(`  alice:     ${alice}`);
  say(`  bob:       ${bob}`);

  let failed = false;
  try {
    const spec = `filesystem:${datastore}`;
    await step("alice", alice, ["init", "--datastore", spec]);
    await step("bob", bob, ["init", "--datastore", spec]);

    await writeModels(alice, bob);
    await step("alice", alice, ["status"]);

    // Both flush their own models at the same time: on the scoped lock path
    // neither waits for the other.
    say();
    say("==> alice and bob flush at the same time");
    const [fa, fb] = await Promise.all([
      cli("alice", alice, ["flush"]),
      cli("bob", bob, ["flush"]),
    ]);
    heading("alice", fa.args);
    show(fa, ", ran concurrently with bob");
    heading("bob", fb.args);
    show(fb, ", ran concurrently with alice");

    await step("alice", alice, ["caps"]);
    await step("alice", alice, ["status", "--remote"]);
    await step("bob", bob, ["status", "--remote"]);
    await step("alice", alice, ["lock", "status"]);

    await step("alice", alice, ["pull", "audio/whisper"]);
    await step("bob", bob, ["pull", "vision/resnet", "@acme/nlp/bert"]);

    say();
    say("==> verifying the pulled files byte for byte");
    for (const model of ["vision/resnet", "@acme/nlp/bert"]) {
      await verifyCopy(
        `alice -> bob ${model}`,
        join(alice, "models", model),
        join(bob, "models", model),
      );
    }
    await verifyCopy(
      "bob -> alice audio/whisper",
      join(bob, "models", "audio/whisper"),
      join(alice, "models", "audio/whisper"),
    );

    await step("bob", bob, ["status", "--remote"]);
    say();
    say("demo: every step succeeded");
  } catch (err) {
    failed = true;
    if (!(err instanceof StepFailed)) throw err;
    say();
    console.error(`demo: FAILED: ${err.message}`);
  } finally {
    say();
    if (keep || failed) {
      say(`demo: kept the temporary directory ${tmp}`);
    } else {
      await Deno.remove(tmp, { recursive: true });
      say(`demo: removed the temporary directory ${tmp}`);
    }
  }
  return failed ? 1 : 0;
}

if (import.meta.main) {
  Deno.exit(await main());
}
