/**
 * Worker side of {@linkcode scanInWorkers} (`./scan_pool.ts`): reads the base
 * and scans each model it is sent, exactly as the main thread would, and
 * posts the results back. Imports only the scan and the base, so it starts
 * fast.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { readBase } from "../model/base.ts";
import type { ModelRef } from "../model/ref.ts";
import { hasChanges, scanModel } from "./scan.ts";
import { packedBuffers, packScan } from "./packed_scan.ts";
import type { Prescan, WorkerJob, WorkerSetup } from "./scan_pool.ts";

let setup: WorkerSetup | undefined;

async function prescan(model: ModelRef): Promise<Prescan> {
  const s = setup!;
  try {
    const base = await readBase(s.repoDir, model);
    const scan = await scanModel(s.repoDir, model, {
      dataDir: s.dataDir,
      exclude: s.exclude,
      symlinks: s.symlinks,
      base,
      hashConcurrency: s.hashConcurrency,
    });
    // The common case of a no-op sync costs one small message, not a copy of every file.
    if (base !== null && scan.exists && scan.hashed === 0 && !hasChanges(scan.changes)) {
      if (scan.skipped.length === 0 && scan.unsyncable.length === 0) {
        const { generation, version } = base;
        return { kind: "unchanged", model, generation, version, files: base.files.length };
      }
    }
    // Packed: a structured clone of every file record would cost the main
    // thread tens of megabytes on a large first push; typed arrays move.
    return { kind: "scanned", model, base, scan: packScan(scan) };
  } catch {
    // The main thread scans this model again and reports the error itself.
    return { kind: "failed", model };
  }
}

self.onmessage = async (e: MessageEvent<WorkerSetup | WorkerJob>) => {
  const msg = e.data;
  if (msg.kind === "setup") {
    setup = msg;
    return;
  }
  const results: Prescan[] = [];
  for (const model of msg.models) results.push(await prescan(model));
  const transfer = results.flatMap((r) => r.kind === "scanned" ? packedBuffers(r.scan) : []);
  self.postMessage(results, transfer);
};
