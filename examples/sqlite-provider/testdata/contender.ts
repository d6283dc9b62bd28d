/**
 * One of several processes racing on one database (provider_test.ts):
 * waits for the start file, tries to create the record `race/first`, then
 * increments the counter in `race/counter` ROUNDS times by compare-and-swap
 * (read, replace on the version read, retry when another process won).
 * Prints `{"created": bool, "lost": N}` (N: replaces refused).
 *
 * Usage: deno run -A contender.ts DB START_FILE ROUNDS
 * (it creates START_FILE.PID once its database is open).
 */
import { hostname } from "node:os";
import sqliteProvider from "../mod.ts";

const [db, start, rounds] = Deno.args;
const p = await sqliteProvider.create({ path: db, pageSize: 1000 }, {
  callTimeoutMs: 30_000,
  host: hostname(),
  pid: Deno.pid,
  baseDir: "/",
});
await p.open();
await Deno.writeTextFile(`${start}.${Deno.pid}`, "ready");
const enc = new TextEncoder();
const dec = new TextDecoder();
while (true) {
  try {
    await Deno.stat(start);
    break;
  } catch {
    await new Promise((r) => setTimeout(r, 5));
  }
}
const created = (await p.createRecord("race/first", enc.encode(String(Deno.pid)))) !== null;
let lost = 0;
for (let i = 0; i < Number(rounds); i++) {
  for (;;) {
    const cur = await p.getRecord("race/counter");
    if (cur === null) throw new Error("race/counter is missing");
    const next = enc.encode(String(Number(dec.decode(cur.bytes)) + 1));
    if ((await p.replaceRecord("race/counter", next, cur.version)) !== null) break;
    lost++;
  }
}
await p.close();
console.log(JSON.stringify({ created, lost }));
