/**
 * Progress (issue 14 point 3): `--progress json` writes JSON lines on stderr
 * with files, bytes, rate and ETA; on a terminal a bar is drawn.
 *
 * Order, not time: each upload waits (the slow-store decorator, `putBlob`)
 * far longer than the 1 s between JSON lines is short.
 *
 * @module
 */
import assert from "node:assert/strict";
import { describe, expectCode, MAIN, Sandbox, slowStore, writeModelFiles } from "./_helpers.ts";

interface Line {
  schema: string;
  operation: string;
  files: number;
  totalFiles: number;
  bytes: number;
  totalBytes: number;
  bytesPerSecond: number;
  etaSeconds: number | null;
  done: boolean;
}

Deno.test("push --progress json writes JSON lines on stderr with increasing bytes", async () => {
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: each upload is slowed
  await writeModelFiles(a, "vpc/m1", { count: 6, size: 64 * 1024 });
  const slow = slowStore(sb, { putBlob: 600 });
  const res = expectCode(
    await a.run(["push", "--progress", "json", "--jobs", "1", ...slow.args], { env: slow.env }),
    0,
  );
  const lines = res.stderr.split("\n").filter((l) => l.trim() !== "").map((l) => {
    try {
      return JSON.parse(l) as Line;
    } catch {
      throw new Error(`a stderr line is not JSON: ${l}\n${describe(res)}`);
    }
  });
  assert.ok(lines.length >= 3, `expected several progress lines\n${describe(res)}`);
  for (const l of lines) {
    assert.equal(l.schema, "modelsync.progress/1");
    assert.equal(l.operation, "push");
    assert.equal(l.totalBytes, 6 * 64 * 1024);
    assert.equal(l.totalFiles, 6);
  }
  for (let i = 1; i < lines.length; i++) assert.ok(lines[i].bytes >= lines[i - 1].bytes);
  const distinct = new Set(lines.map((l) => l.bytes));
  assert.ok(distinct.size >= 3, `bytes should move between lines\n${describe(res)}`);
  const last = lines.at(-1)!;
  assert.equal(last.done, true);
  assert.equal(last.files, 6);
  assert.equal(last.bytes, 6 * 64 * 1024);
  assert.ok(lines.some((l) => !l.done && l.bytesPerSecond > 0 && l.etaSeconds !== null));
  // The report on stdout is unchanged by progress.
  assert.match(res.stdout, /^pushed\s+vpc\/m1/m, describe(res));
});

Deno.test("on a terminal, push draws a progress bar in bytes and files", async () => {
  const script = await new Deno.Command("sh", { args: ["-c", "command -v script"] }).output();
  if (!script.success) {
    console.log("skipped: util-linux script(1) is not installed");
    return;
  }
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  await a.noPacks(); // a blob per file: each upload is slowed
  await writeModelFiles(a, "vpc/m1", { count: 5, size: 32 * 1024 });
  const slow = slowStore(sb, { putBlob: 500 });
  const cmd = `${Deno.execPath()} run -A --quiet ${MAIN} push --jobs 1 ${
    slow.args.map((x) => `'${x}'`).join(" ")
  }`;
  const out = await new Deno.Command("script", {
    args: ["-qec", cmd, "/dev/null"],
    cwd: a.dir,
    env: { ...slow.env, NO_COLOR: "1", TERM: "xterm" },
    stdin: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, text);
  assert.match(text, /push \[[^\]]*\] \d+% \| \d\/5 files \| [\d.]+ KiB\/160\.0 KiB/, text);
});

Deno.test("on a terminal statuses are coloured, unless NO_COLOR or --no-color", async () => {
  const script = await new Deno.Command("sh", { args: ["-c", "command -v script"] }).output();
  if (!script.success) {
    console.log("skipped: util-linux script(1) is not installed");
    return;
  }
  await using sb = await Sandbox.create();
  const a = await sb.repo("a");
  const tty = async (args: string, env: Record<string, string> = {}) => {
    const out = await new Deno.Command("script", {
      args: ["-qec", `${Deno.execPath()} run -A --quiet ${MAIN} ${args}`, "/dev/null"],
      cwd: a.dir,
      // Not the test's own environment: it may carry NO_COLOR.
      clearEnv: true,
      env: {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: Deno.env.get("HOME") ?? a.dir,
        TERM: "xterm",
        ...env,
      },
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, text);
    return text;
  };
  await a.write("models/vpc/m1/a.txt", "1");
  const ESC = "\u001b";
  assert.ok((await tty("push")).includes(`${ESC}[32mpushed`), "a green pushed");
  await a.write("models/vpc/m1/a.txt", "2");
  assert.ok((await tty("status")).includes(`${ESC}[33mM${ESC}[0m a.txt`), "a yellow M");
  assert.ok(!(await tty("--no-color status")).includes(`${ESC}[3`), "no colour with --no-color");
  assert.ok(!(await tty("status", { NO_COLOR: "1" })).includes(`${ESC}[3`), "no colour: NO_COLOR");
});
