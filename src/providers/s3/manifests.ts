/**
 * Manifest storage of the S3 provider: one object per model,
 * `manifests/TYPE/ID.json`, replaced by a conditional PUT: `If-None-Match: *`
 * for the first generation, `If-Match: <ETag of generation expected>` after.
 * The version token is the object's ETag, which the listing returns, so a
 * zero-diff pull reads no bodies.
 *
 * ETags seen (listing, read, commit) are remembered with the generation they
 * hold, so a commit right after a read costs one PUT; an unknown ETag costs a
 * GET first. The compare-and-swap is the server's precondition either way.
 *
 * @module
 */
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { ConflictError } from "../../errors.ts";
import { assertCommitArgs, type Manifest, parseManifestText } from "../../model/manifest.ts";
import { formatRef, isValidId, isValidName, type ModelRef, refProblem } from "../../model/ref.ts";
import type { ManifestListing, StoredManifest } from "../../provider/contract.ts";
import { isNoSuchKey, isPreconditionFailed, s3Fail } from "./client.ts";
import { type BlobArea, listPages } from "./blobs.ts";

/** The key of a model's manifest below the datastore prefix. */
export function manifestRel(model: ModelRef): string {
  const problem = refProblem(formatRef(model));
  if (problem !== undefined) {
    throw new Error(`Invalid model ref ${JSON.stringify(formatRef(model))}: ${problem}.`);
  }
  return `manifests/${model.type}/${model.id}.json`;
}

/** The model a manifest key (below `manifests/`) names, or null for a stray key. */
export function modelOfRel(rel: string): ModelRef | null {
  if (!rel.endsWith(".json")) return null;
  const parts = rel.slice(0, -".json".length).split("/");
  if (parts.length === 2 && isValidName(parts[0]) && isValidId(parts[1])) {
    return { type: parts[0], id: parts[1] };
  }
  if (
    parts.length === 3 && parts[0].startsWith("@") && isValidName(parts[0].slice(1)) &&
    isValidName(parts[1]) && isValidId(parts[2])
  ) {
    return { type: `${parts[0]}/${parts[1]}`, id: parts[2] };
  }
  return null;
}

/** An opaque version token from an ETag (quotes dropped). */
function token(etag: string | undefined): string {
  return String(etag ?? "").replace(/^W\//, "").replace(/"/g, "");
}

/** The manifests area of one S3 datastore. */
export class S3ManifestStore {
  readonly #a: BlobArea;
  /** model → the ETag last seen and the generation it holds (when read). */
  readonly #seen = new Map<string, { etag: string; generation?: number }>();

  constructor(area: BlobArea) {
    this.#a = area;
  }

  /** Every model with a manifest: ListObjectsV2, 1,000 keys per request, no bodies. */
  async list(signal?: AbortSignal): Promise<ManifestListing[]> {
    const prefix = this.#a.key("manifests/");
    const out: ManifestListing[] = [];
    for await (const page of listPages(this.#a, "manifests/", { what: "manifests", signal })) {
      for (const o of page.Contents ?? []) {
        const model = o.Key === undefined ? null : modelOfRel(o.Key.slice(prefix.length));
        if (model === null || o.ETag === undefined) continue;
        const version = token(o.ETag);
        const key = formatRef(model);
        const known = this.#seen.get(key);
        if (known?.etag !== version) this.#seen.set(key, { etag: version });
        out.push({ model, version });
      }
    }
    return out;
  }

  /** The current manifest of a model, or null. */
  async get(model: ModelRef, signal?: AbortSignal): Promise<StoredManifest | null> {
    const rel = manifestRel(model);
    let out;
    let text: string;
    try {
      out = await this.#a.s3.client.send(
        new GetObjectCommand({ Bucket: this.#a.bucket, Key: this.#a.key(rel) }),
        { abortSignal: signal },
      );
      text = (await out.Body?.transformToString("utf-8")) ?? "";
    } catch (err) {
      if (isNoSuchKey(err)) {
        this.#seen.delete(formatRef(model));
        return null;
      }
      throw s3Fail(err, this.#a.fail(`read manifest ${formatRef(model)}`));
    }
    const manifest = parseManifestText(text, model, rel);
    const version = token(out.ETag);
    this.#seen.set(formatRef(model), { etag: version, generation: manifest.generation });
    return { manifest, version };
  }

  /** Commits generation `expected + 1` by a conditional PUT. */
  async commit(
    model: ModelRef,
    expected: number,
    manifest: Manifest,
    signal?: AbortSignal,
  ): Promise<{ version: string }> {
    const key = formatRef(model);
    assertCommitArgs(model, expected, manifest);
    let condition: { IfNoneMatch: "*" } | { IfMatch: string };
    if (expected === 0) {
      condition = { IfNoneMatch: "*" };
    } else {
      let known = this.#seen.get(key);
      if (known?.generation === undefined) {
        const cur = await this.get(model, signal);
        const generation = cur?.manifest.generation ?? 0;
        if (generation !== expected) throw conflict(key, expected, generation);
        known = this.#seen.get(key);
      } else if (known.generation !== expected) {
        // What we saw last is not what the caller expects: read again to be sure.
        const cur = await this.get(model, signal);
        const generation = cur?.manifest.generation ?? 0;
        if (generation !== expected) throw conflict(key, expected, generation);
        known = this.#seen.get(key);
      }
      condition = { IfMatch: `"${known!.etag}"` };
    }
    signal?.throwIfAborted();
    let etag: string | undefined;
    try {
      const out = await this.#a.s3.client.send(
        new PutObjectCommand({
          Bucket: this.#a.bucket,
          Key: this.#a.key(manifestRel(model)),
          Body: new TextEncoder().encode(JSON.stringify(manifest, null, 1) + "\n"),
          ContentType: "application/json",
          ...condition,
        }),
        { abortSignal: signal },
      );
      etag = out.ETag;
    } catch (err) {
      if (isPreconditionFailed(err)) {
        this.#seen.delete(key);
        const cur = await this.get(model, signal).catch(() => null);
        throw conflict(key, expected, cur?.manifest.generation ?? expected + 1);
      }
      throw s3Fail(err, this.#a.fail(`commit manifest ${key}`));
    }
    const version = token(etag);
    this.#seen.set(key, { etag: version, generation: manifest.generation });
    return { version };
  }
}

function conflict(key: string, expected: number, current: number): ConflictError {
  return new ConflictError(
    `Cannot commit ${key} generation ${expected + 1}: the datastore is at generation ` +
      `${current} (expected ${expected}). Run "modelsync pull" and retry.`,
    { current },
  );
}
