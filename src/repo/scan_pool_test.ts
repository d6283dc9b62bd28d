import assert from "node:assert/strict";
import { join } from "node:path";
import { type BaseState, readBase, writeBase } from "../model/base.ts";
import { formatRef, type ModelRef } from "../model/ref.ts";
import { withTempDir } from "../_with_temp_dir.ts";
import { scanModel, type ScanResult } from "./scan.ts";
import { scanInWorkers, scanWorkerCount } from "./scan_pool.ts";
import { unpackScan } from "./packed_scan.ts";

const OPTS = { dataDir: "models", exclude: ["*.tmp"] };

async function put(repo: string, rel: string, text: string, mtimeMs?: number): Promise<void> {
  const path = join(repo, rel);
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeTextFile(path, text);
  if (mtimeMs !== undefined) await Deno.utime(path, mtimeMs / 1000, mtimeMs / 1000);
}

function baseOf(model: ModelRef, scan: ScanResult, syncedAtMs: number): BaseState {
  return {
    format: 1,
    model: formatRef(model),
    generation: 3,
    version: "v3",
    files: [...scan.files.values()].map((f) => ({
      path: f.path,
      sha256: f.sha256,
      size: f.size,
      executable: f.executable,
      mtimeMs: f.mtimeMs,
    })),
    syncedAtMs,
  };
}

/** The scan without the fields that differ from run to run. */
function comparable(scan: ScanResult) {
  const { startedAtMs: _, ...rest } = scan;
  return rest;
}

Deno.test("scanInWorkers gives what readBase + scanModel give in-process", async () => {
  await withTempDir(async (repo) => {
    const old = Date.now() - 60_000;
    const models: ModelRef[] = [];
    for (let i = 0; i < 12; i++) models.push({ type: "net", id: `m${i}` });
    models.push({ type: "@acme/net", id: "x" });
    for (const m of models) {
      const dir = `models/${m.type}/${m.id}`;
      await put(repo, `${dir}/a.json`, `a ${m.id}`, old);
      await put(repo, `${dir}/sub/b.bin`, `b ${m.id}`, old);
      await put(repo, `${dir}/c.tmp`, "excluded", old);
      const scan = await scanModel(repo, m, { ...OPTS, base: null });
      await writeBase(repo, m, baseOf(m, scan, Date.now()));
    }
    // Now make every kind of difference, one per model.
    await put(repo, "models/net/m1/a.json", "edited", old + 5000); // modified
    await put(repo, "models/net/m2/new.txt", "new", old); // added
    await Deno.remove(join(repo, "models/net/m3/sub/b.bin")); // deleted
    await Deno.symlink("/etc/hostname", join(repo, "models/net/m4/link")); // skipped
    await put(repo, "models/net/m5/.modelsync/x", "nested state"); // skipped
    await Deno.utime(join(repo, "models/net/m6/a.json"), old / 1000, (old + 7) / 1000); // hashed
    await Deno.chmod(join(repo, "models/net/m7/a.json"), 0o755); // executable bit
    await Deno.remove(join(repo, "models/net/m8"), { recursive: true }); // directory gone
    await Deno.writeTextFile(join(repo, ".modelsync/base/net/m9.json"), "{"); // corrupt base
    models.push({ type: "net", id: "never" }); // no directory, no base

    const got = await scanInWorkers(repo, models, { ...OPTS, workers: 2 });
    for (const m of models) {
      const key = formatRef(m);
      const r = got.get(key);
      let base: BaseState | null;
      try {
        base = await readBase(repo, m);
      } catch {
        assert.equal(r?.kind ?? "failed", "failed", key);
        continue;
      }
      const scan = await scanModel(repo, m, { ...OPTS, base });
      assert.ok(r !== undefined, key);
      if (r.kind === "unchanged") {
        assert.equal(scan.hashed, 0, key);
        assert.deepEqual(scan.skipped, [], key);
        assert.deepEqual(scan.changes, { added: [], modified: [], deleted: [] }, key);
        assert.equal(r.generation, base?.generation, key);
        assert.equal(r.files, base?.files.length, key);
      } else {
        assert.equal(r.kind, "scanned", key);
        assert.deepEqual(r.base, base, key);
        assert.deepEqual(comparable(unpackScan(r.scan)), comparable(scan), key);
      }
    }
    const kinds = Object.fromEntries([...got].map(([k, r]) => [k, r.kind]));
    assert.equal(kinds["net/m0"], "unchanged");
    assert.equal(kinds["@acme/net/x"], "unchanged");
    for (const id of ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "never"]) {
      assert.equal(kinds[`net/${id}`], "scanned", id);
    }
    assert.equal(kinds["net/m9"] ?? "failed", "failed");
  });
});

Deno.test("scanInWorkers: an aborted signal stops the scan", async () => {
  await withTempDir(async (repo) => {
    await put(repo, "models/net/m0/a", "a");
    const ctl = new AbortController();
    ctl.abort(new Error("stop"));
    await assert.rejects(
      scanInWorkers(repo, [{ type: "net", id: "m0" }], { ...OPTS, signal: ctl.signal }),
      /stop/,
    );
  });
});

Deno.test("scanWorkerCount: no workers for a few models", () => {
  assert.equal(scanWorkerCount(3), 0);
  const many = scanWorkerCount(1000);
  assert.ok(many === 0 || (many >= 2 && many <= 4), String(many));
});
