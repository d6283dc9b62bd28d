/**
 * Datastore specs: `filesystem:/path`, `s3://bucket/prefix`, `postgres://…`,
 * a bare path, or `TYPE:location` for other provider types.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { homedir } from "node:os";
import { UsageError } from "../errors.ts";
// The S3 spec's own rule; it moves with the spec parsing into the provider module.
import { credentialsInUrlRemedy, endpointHasCredentials } from "../providers/s3/config.ts";

/** Where the data lives: a provider type and its provider-specific keys. */
export interface DatastoreConfig {
  type: string;
  [key: string]: unknown;
}

// Only the types this version opens (postgres:// is recognised, then refused as not yet available).
const SPEC_HELP = "Use filesystem:/path, a plain path, or s3://bucket/prefix.";

/**
 * Parses a datastore spec. Relative filesystem paths resolve against
 * `baseDir`; `~/` against the home directory.
 *
 * @example
 * ```ts
 * import { parseDatastoreSpec } from "./datastore_spec.ts";
 * parseDatastoreSpec("filesystem:store", "/repo"); // { type: "filesystem", path: "/repo/store" }
 * parseDatastoreSpec("s3://bucket/team/models", "/repo"); // { type: "s3", bucket: "bucket", prefix: "team/models" }
 * ```
 */
export function parseDatastoreSpec(
  spec: string,
  baseDir: string,
  /** Where the spec came from, for messages: `--datastore`, `MODELSYNC_DATASTORE`, … */
  what = "datastore",
): DatastoreConfig {
  const text = spec.trim();
  if (text === "") throw new UsageError(`Invalid ${what} "": it is empty. ${SPEC_HELP}`);
  const bad = (why: string) =>
    new UsageError(`Invalid ${what} ${JSON.stringify(redactSpec(spec))}: ${why}. ${SPEC_HELP}`);
  const lower = text.toLowerCase();
  if (lower.startsWith("file://")) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw bad("it is not a valid file:// URL");
    }
    if (url.host !== "" && url.host !== "localhost") throw bad("a file:// URL cannot name a host");
    return { type: "filesystem", path: decodeURIComponent(url.pathname) };
  }
  if (lower.startsWith("s3://")) return parseS3(text, bad);
  if (lower.startsWith("postgres://") || lower.startsWith("postgresql://")) {
    return { type: "postgres", url: text };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):(.*)$/i.exec(text);
  if (scheme !== null && scheme[1].length > 1) {
    const type = scheme[1].toLowerCase();
    const rest = scheme[2];
    if (type === "filesystem" || type === "fs") {
      if (rest.trim() === "") throw bad("it names no path");
      return { type: "filesystem", path: localPath(rest, baseDir) };
    }
    if (type === "module") {
      if (rest.trim() === "") throw bad("it names no module file");
      return { type: "module", module: localPath(rest, baseDir) };
    }
    return { type, location: rest };
  }
  return { type: "filesystem", path: localPath(text, baseDir) };
}

/** A spec fit for messages: no user info, no query (either may hold secrets). */
function redactSpec(spec: string): string {
  return spec.replace(/\/\/[^/@]*@/, "//***@").replace(/\?.*$/, "?***");
}

/** Resolves a local path against `baseDir` (`~/` against the home directory). */
export function localPath(path: string, baseDir: string): string {
  if (path === "~" || path.startsWith("~/")) return join(homedir(), path.slice(1));
  return resolve(baseDir, path);
}

function parseS3(text: string, bad: (why: string) => UsageError): DatastoreConfig {
  if (text.includes("#")) {
    throw bad("it has a #fragment, which S3 has no use for (percent-encode a # in a key as %23)");
  }
  const rest = text.slice("s3://".length);
  const q = rest.indexOf("?");
  const location = q < 0 ? rest : rest.slice(0, q);
  // A secret never reaches modelsync.yaml or a message: refused before anything is written.
  const secret = (shown: string, what: string) =>
    new UsageError(`Invalid datastore ${JSON.stringify(shown)}: ${credentialsInUrlRemedy(what)}.`);
  if (hasUserInfo(location)) throw secret("s3://***", "the s3:// URL");
  const slash = location.indexOf("/");
  const bucket = slash < 0 ? location : location.slice(0, slash);
  const prefix = slash < 0 ? "" : location.slice(slash + 1).replace(/^\/+|\/+$/g, "");
  if (bucket === "") throw bad("it names no bucket");
  if (
    prefix.split("/").some((seg) => seg === "." || seg === ".." || (seg === "" && prefix !== ""))
  ) {
    throw bad(`its prefix "${prefix}" has an empty, "." or ".." segment; name the prefix plainly`);
  }
  const out: DatastoreConfig = { type: "s3", bucket, prefix };
  // Extra settings such as ?endpoint=…&region=… become provider keys.
  if (q >= 0) {
    for (const [k, v] of new URLSearchParams(rest.slice(q + 1))) {
      if (k === "type" || k === "bucket" || k === "prefix") throw bad(`it sets "${k}" twice`);
      if (k === "endpoint" && endpointHasCredentials(v)) {
        throw secret(redactSpec(text), "its endpoint URL");
      }
      out[k] = v;
    }
  }
  return out;
}

/**
 * True when the part of an `s3://` spec after the scheme starts with user
 * info: an `@` before the first `/` (never valid in a bucket name), or a `:`
 * (never valid in a bucket name either) before the first `/` and before an
 * `@` (a secret key may itself hold a `/`).
 */
function hasUserInfo(location: string): boolean {
  const at = location.indexOf("@");
  if (at < 0) return false;
  const slash = location.indexOf("/");
  const colon = location.indexOf(":");
  const beforeSlash = (i: number) => slash < 0 || i < slash;
  return beforeSlash(at) || (colon >= 0 && colon < at && beforeSlash(colon));
}
