/**
 * `verify [MODEL...] [--read-data]`: checks that every head and every
 * history record reachable from it reads back, links to its parent, and
 * names only stored blobs; with `--read-data` every named blob is
 * downloaded and its SHA-256 and size checked (design/history.md).
 * Read-only: no lock, no repository needed.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { CorruptError, ExitCode, NotFoundError } from "../errors.ts";
import { getHead, type StoredManifest } from "../model/commits.ts";
import { readPruned, walkHistory } from "../model/history.ts";
import { hashBytes } from "../model/hash.ts";
import { parseManifestText } from "../model/manifest.ts";
import { blobOf } from "../model/pack.ts";
import { formatRef, type ModelRef, sortUniqueRefs } from "../model/ref.ts";
import { headKey, historyKey } from "../provider/keys.ts";
import { runPool } from "../async.ts";
import { formatBytes, listPaths, pad } from "./format.ts";
import { Progress, progressOutput } from "./progress.ts";
import type { Session } from "./session.ts";

/** What is wrong. */
export type VerifyProblemKind =
  /** A record names a blob the datastore does not have. */
  | "missing-blob"
  /** A blob's content does not hash to its name, or its size differs (`--read-data`). */
  | "corrupt-blob"
  /** A head, history or pruned record that does not parse, or disagrees with its key. */
  | "corrupt-record"
  /** A record that must exist does not: a parent gc did not remove, the head's own commit. */
  | "missing-record";

/** One problem found. */
export interface VerifyProblem {
  model: string;
  /** The generation concerned, when known. */
  generation: number | null;
  /** The file path, for a blob problem. */
  path: string | null;
  blob: string | null;
  /** The record concerned, for a record problem. */
  key: string | null;
  problem: VerifyProblemKind;
  /** One sentence: what is wrong and the remedy. */
  detail: string;
}

/** The `verify` result. */
export interface VerifyResult {
  schema: "modelsync.verify/1";
  readData: boolean;
  models: number;
  /** History records read (heads included once). */
  generations: number;
  /** Distinct blobs named. */
  blobs: number;
  /** Bytes downloaded with --read-data. */
  bytesRead: number;
  problems: VerifyProblem[];
  /** Not printed in JSON. */
  exitCode: number;
}

/** One place a blob is named. */
interface BlobRef {
  model: string;
  generation: number;
  path: string;
  size: number;
  /** A packed file: its content hash and where it lies in the pack (the blob). */
  packed?: { sha256: string; offset: number };
}

const decoder = new TextDecoder();
/** Hashes per `hasBlobs` call. */
const HAS_BATCH = 1_000;

/** Verifies the named models, or every model with a head. */
export async function runVerify(
  s: Session,
  opts: { models?: ModelRef[]; readData: boolean },
): Promise<VerifyResult> {
  const signal = s.signal;
  const p = s.provider.provider;
  const named = opts.models !== undefined && opts.models.length > 0;
  const models = named
    ? sortUniqueRefs(opts.models!)
    : (await s.provider.listManifests({ signal })).map((l) => l.model);
  const problems: VerifyProblem[] = [];
  const refs = new Map<string, BlobRef[]>();
  let generations = 0;
  const problem = (
    model: string,
    kind: VerifyProblemKind,
    detail: string,
    at: Partial<Pick<VerifyProblem, "generation" | "path" | "blob" | "key">> = {},
  ) =>
    problems.push({
      model,
      generation: at.generation ?? null,
      path: at.path ?? null,
      blob: at.blob ?? null,
      key: at.key ?? null,
      problem: kind,
      detail,
    });

  await runPool(models, { jobs: Math.max(1, s.jobs), signal }, async (model) => {
    const ref = formatRef(model);
    let head: StoredManifest | null;
    try {
      head = await getHead(p, model, { signal });
    } catch (err) {
      if (!(err instanceof CorruptError)) throw err;
      problem(ref, "corrupt-record", err.message, { key: headKey(model) });
      return;
    }
    if (head === null) {
      if (named) {
        throw new NotFoundError(
          `Model ${ref} is not in the datastore: check the name ("modelsync status --remote" ` +
            `lists the models).`,
        );
      }
      return; // its head went away since the listing
    }
    await checkHeadRecord(p, model, head, { signal, problem });
    try {
      await readPruned(p, model, { signal });
    } catch (err) {
      if (!(err instanceof CorruptError)) throw err;
      problem(ref, "corrupt-record", err.message);
    }
    const walk = await walkHistory(p, model, { head, signal });
    generations += walk.entries.length;
    for (const { manifest: m } of walk.entries) {
      for (const f of m.files) {
        if (f.link !== undefined) continue; // stored inline: no blob
        const blob = blobOf(f);
        const list = refs.get(blob);
        const r: BlobRef = { model: ref, generation: m.generation, path: f.path, size: f.size };
        if (f.pack !== undefined) r.packed = { sha256: f.sha256, offset: f.pack.offset };
        if (list === undefined) refs.set(blob, [r]);
        else list.push(r);
      }
    }
    const oldest = walk.entries[walk.entries.length - 1].manifest;
    const end = walk.end;
    if (end.kind === "missing") {
      problem(
        ref,
        "missing-record",
        `Generation ${oldest.generation} names parent generation ${end.generation}, whose ` +
          `record ${end.key} is missing and was not removed by gc: restore it from a backup ` +
          `if there is one; newer generations are intact.`,
        { generation: end.generation, key: end.key },
      );
    } else if (end.kind === "corrupt") {
      problem(
        ref,
        "corrupt-record",
        `The record of generation ${end.generation} (${end.key}) is unreadable: ${end.message}.`,
        { generation: end.generation, key: end.key },
      );
    }
  });

  const hashes = [...refs.keys()].sort();
  const hasAll = async (list: string[]) => {
    const found = new Set<string>();
    for (let i = 0; i < list.length; i += HAS_BATCH) {
      for (const h of await s.provider.hasBlobs(list.slice(i, i + HAS_BATCH), { signal })) {
        found.add(h);
      }
    }
    return found;
  };
  const present = await hasAll(hashes);
  const blobProblem = (hash: string, kind: VerifyProblemKind, what: string) => {
    for (const r of refs.get(hash)!) {
      const remedy = `"modelsync push ${r.model}" in a repository whose working copy holds ` +
        `that file stores it again`;
      problem(
        r.model,
        kind,
        `Blob ${hash} of ${r.path} (generation ${r.generation}) ${what}: ${
          kind === "corrupt-blob" ? `delete it from the datastore, then ${remedy}` : remedy
        }.`,
        { generation: r.generation, path: r.path, blob: hash },
      );
    }
  };
  // A pack that is gone is no problem for a file whose content is also a blob
  // of its own (what a push of the model stores again to repair it).
  const gonePacks = hashes.filter((h) => !present.has(h) && refs.get(h)!.some((r) => r.packed));
  // (A file whose content is the pack's bytes names the same blob: it has no other place.)
  const own = [
    ...new Set(gonePacks.flatMap((h) => refs.get(h)!.flatMap((r) => r.packed?.sha256 ?? []))),
  ];
  const ownPresent = own.length === 0 ? new Set<string>() : await hasAll(own);
  for (const h of hashes) {
    if (present.has(h)) continue;
    const lacking = refs.get(h)!.filter((r) => !r.packed || !ownPresent.has(r.packed.sha256));
    for (const r of lacking) {
      problem(
        r.model,
        "missing-blob",
        `${r.packed ? "Pack" : "Blob"} ${h} of ${r.path} (generation ${r.generation}) is ` +
          `missing: "modelsync push ${r.model}" in a repository whose working copy holds that ` +
          `file stores it again.`,
        { generation: r.generation, path: r.path, blob: h },
      );
    }
  }

  // Files of a pack that is gone are read from their own blobs: those are what --read-data checks.
  const fallback = new Set<string>();
  for (const h of gonePacks) {
    for (const r of refs.get(h)!) {
      if (r.packed === undefined || !ownPresent.has(r.packed.sha256)) continue;
      const { packed, ...own } = r;
      const list = refs.get(packed.sha256);
      if (list === undefined) refs.set(packed.sha256, [own]);
      else list.push(own);
      if (!present.has(packed.sha256)) fallback.add(packed.sha256);
    }
  }

  let bytesRead = 0;
  if (opts.readData) {
    const toRead = [...hashes.filter((h) => present.has(h)), ...[...fallback].sort()];
    const progress = new Progress("verify", { mode: progressOutput(s.settings) });
    progress.addTotal(toRead.length, toRead.reduce((n, h) => n + refs.get(h)![0].size, 0));
    progress.start();
    try {
      await runPool(toRead, { jobs: Math.max(1, s.jobs), signal }, async (hash) => {
        const want = refs.get(hash)![0].size;
        if (refs.get(hash)!.some((r) => r.packed !== undefined)) {
          bytesRead += await checkPack(s, hash, refs.get(hash)!, { signal, blobProblem });
          progress.advance(1, want);
          return;
        }
        const got = await readBlob(s, hash, signal);
        bytesRead += got === null ? 0 : got.size;
        progress.advance(1, want);
        if (got === null) blobProblem(hash, "missing-blob", "is missing");
        else if (got.sha256 !== hash) {
          blobProblem(
            hash,
            "corrupt-blob",
            `is corrupt: its ${got.size} bytes hash to ${got.sha256}`,
          );
        } else {
          const sizes = [...new Set(refs.get(hash)!.map((r) => r.size))];
          if (sizes.some((n) => n !== got.size)) {
            blobProblem(hash, "corrupt-blob", `has ${got.size} bytes, not ${sizes.join(" or ")}`);
          }
        }
      });
    } finally {
      progress.stop();
    }
  }
  problems.sort((a, b) =>
    a.model < b.model ? -1 : a.model > b.model ? 1 : (
      (b.generation ?? 0) - (a.generation ?? 0) || (a.path ?? "").localeCompare(b.path ?? "")
    )
  );
  return {
    schema: "modelsync.verify/1",
    readData: opts.readData,
    models: models.length,
    generations,
    blobs: hashes.length,
    bytesRead,
    problems,
    exitCode: problems.length > 0 ? ExitCode.datastore : ExitCode.ok,
  };
}

/** The head's own history record must exist and hold the same commit. */
async function checkHeadRecord(
  p: Session["provider"]["provider"],
  model: ModelRef,
  head: StoredManifest,
  opts: {
    signal: AbortSignal;
    problem: (
      model: string,
      kind: VerifyProblemKind,
      detail: string,
      at?: { generation?: number; key?: string },
    ) => void;
  },
): Promise<void> {
  const { problem } = opts;
  const m = head.manifest;
  const key = historyKey(model, m.generation, m.commit);
  const rec = await p.getRecord(key, { signal: opts.signal });
  const ref = formatRef(model);
  if (rec === null) {
    problem(
      ref,
      "missing-record",
      `The history record ${key} of the head (generation ${m.generation}) is missing: restore ` +
        `it from a backup if there is one; the head itself is intact.`,
      { generation: m.generation, key },
    );
    return;
  }
  try {
    const stored = parseManifestText(decoder.decode(rec.bytes), model, key);
    if (JSON.stringify(stored) !== JSON.stringify(m)) {
      problem(
        ref,
        "corrupt-record",
        `The history record ${key} differs from the head of the same commit; the head was ` +
          `changed by something other than modelsync.`,
        { generation: m.generation, key },
      );
    }
  } catch (err) {
    if (!(err instanceof CorruptError)) throw err;
    problem(ref, "corrupt-record", err.message, { generation: m.generation, key });
  }
}

/**
 * Reads a pack whole (up to about 16 MiB): it must hash to its name, and the
 * part each packed file names must hash to that file's content hash. Returns
 * the bytes read.
 */
async function checkPack(
  s: Session,
  hash: string,
  refs: readonly BlobRef[],
  opts: {
    signal: AbortSignal;
    blobProblem: (hash: string, kind: VerifyProblemKind, what: string) => void;
  },
): Promise<number> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(
      await new Response(await s.provider.getBlob(hash, { signal: opts.signal })).arrayBuffer(),
    );
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    opts.blobProblem(hash, "missing-blob", "is missing");
    return 0;
  }
  const got = hashBytes(bytes);
  if (got !== hash) {
    opts.blobProblem(hash, "corrupt-blob", `is corrupt: its ${bytes.length} bytes hash to ${got}`);
    return bytes.length;
  }
  // A file whose content is the pack's bytes (same hash) names the whole blob.
  const bad = refs.filter((r) =>
    r.packed === undefined ? r.size !== bytes.length : r.packed.offset + r.size > bytes.length ||
      hashBytes(bytes.subarray(r.packed.offset, r.packed.offset + r.size)) !== r.packed.sha256
  );
  if (bad.length > 0) {
    opts.blobProblem(
      hash,
      "corrupt-blob",
      `is an intact pack, but does not hold the content its manifests name for ${
        listPaths(bad.map((r) => r.path))
      } (a manifest written wrong)`,
    );
  }
  return bytes.length;
}

/** Streams a blob through SHA-256: its hash and size, or null when it is missing. */
async function readBlob(
  s: Session,
  hash: string,
  signal: AbortSignal,
): Promise<{ sha256: string; size: number } | null> {
  let stream: ReadableStream<Uint8Array>;
  try {
    stream = await s.provider.getBlob(hash, { signal });
  } catch (err) {
    if (err instanceof NotFoundError) return null;
    throw err;
  }
  const h = createHash("sha256");
  let size = 0;
  for await (const chunk of stream) {
    h.update(chunk);
    size += chunk.length;
  }
  return { sha256: h.digest("hex"), size };
}

/** Human lines for `verify`: one per problem, then a summary. */
export function formatVerify(r: VerifyResult): string[] {
  const width = Math.max(8, ...r.problems.map((p) => p.model.length));
  const out = r.problems.map((p) => {
    const where = [
      pad(p.problem, 15) + pad(p.model, width),
      ...(p.generation === null ? [] : [`generation ${p.generation}`]),
      ...(p.path === null ? [] : [listPaths([p.path])]),
      ...(p.blob === null ? [] : [`blob ${p.blob.slice(0, 12)}…`]),
    ].join("  ");
    return `${where}\n  ${p.detail}`;
  });
  const read = r.readData ? `, read ${formatBytes(r.bytesRead)}` : "";
  const n = r.problems.length;
  out.push(
    `Checked ${r.models} ${r.models === 1 ? "model" : "models"}, ${r.generations} ` +
      `${r.generations === 1 ? "generation" : "generations"}, ${r.blobs} ` +
      `${r.blobs === 1 ? "blob" : "blobs"}${read}: ${
        n === 0 ? "no problems" : `${n} ${n === 1 ? "problem" : "problems"}`
      }.`,
  );
  return out;
}
