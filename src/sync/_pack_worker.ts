/**
 * Worker side of {@linkcode PackWorkers} (`./pack_pool.ts`): builds each pack
 * it is sent, reading every file with the same check the main thread uses
 * (`readCheckedSource`: the bytes must hash to what the scan found), and
 * posts the pack's bytes back, transferred. Any failure is answered
 * `ok: false`; the main thread then builds that pack itself and reports the
 * error.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { PackBuilder } from "../model/pack.ts";
import { readCheckedSource } from "../provider/blob_source.ts";
import type { PackReply, PackRequest } from "./pack_pool.ts";

self.onmessage = async (e: MessageEvent<PackRequest>) => {
  const { id, items } = e.data;
  let reply: PackReply;
  let transfer: ArrayBuffer[] = [];
  try {
    const builder = new PackBuilder();
    const offsets: number[] = [];
    for (const it of items) {
      const content = await readCheckedSource(it.sha256, {
        kind: "file",
        path: it.file,
        size: it.size,
      });
      offsets.push(builder.add(it.sha256, content));
    }
    const pack = builder.finish();
    reply = { id, ok: true, sha256: pack.sha256, bytes: pack.bytes, offsets, size: builder.size };
    transfer = [pack.bytes.buffer as ArrayBuffer];
  } catch {
    reply = { id, ok: false };
  }
  self.postMessage(reply, transfer);
};
