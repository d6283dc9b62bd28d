/**
 * Helpers for the end-to-end tests on an S3 datastore: a {@linkcode Sandbox}
 * whose repositories use a fresh bucket on the local S3 test server (moto,
 * started with `eval "$(scripts/services.sh start)"`), optionally through an
 * {@linkcode S3Proxy} to count requests and inject faults, and direct reads
 * of the bucket's layout (SPEC §3) to check what the CLI stored.
 *
 * Direct reads go to the server itself, never through the proxy, so they do
 * not show up in its counts.
 *
 * @example
 * ```ts ignore
 * import { S3Sandbox, s3TestOptions } from "./_s3.ts";
 * Deno.test({ name: "push", ...s3TestOptions() }, async () => {
 *   await using s3 = await S3Sandbox.create("push", { proxy: true });
 *   const repo = await s3.sb.repo("a");
 *   await repo.write("models/vpc/m1/a.txt", "hello");
 *   await repo.run(["push"]);
 *   console.log(s3.proxy!.count, await s3.store.keys("manifests/"));
 * });
 * ```
 * @module
 */
import { join } from "node:path";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import {
  freshBucket,
  S3_ENDPOINT,
  S3_TEST_ENV,
  s3TestOptions,
} from "../src/providers/s3/_test_server.ts";
import { Sandbox } from "./_helpers.ts";
import { S3Proxy, type S3ProxyOptions } from "./_s3_proxy.ts";

export { freshBucket, S3_ENDPOINT, S3_TEST_ENV, s3TestOptions };

/** How to build an {@linkcode S3Sandbox}. */
export interface S3SandboxOptions {
  /** Put an {@linkcode S3Proxy} between the CLI and the server (`true` or its options). */
  proxy?: boolean | S3ProxyOptions;
  /** Key prefix of the datastore inside the bucket (default `team/models`). */
  prefix?: string;
  /** Extra environment for every CLI run (overrides the test credentials). */
  env?: Record<string, string>;
}

/** A sandbox whose datastore is a fresh bucket on the S3 test server. */
export class S3Sandbox {
  private constructor(
    readonly sb: Sandbox,
    readonly bucket: string,
    readonly prefix: string,
    readonly proxy: S3Proxy | null,
    readonly store: S3Store,
  ) {}

  /** A new bucket (named after `hint`), a proxy when asked for, and a sandbox using them. */
  static async create(hint: string, opts: S3SandboxOptions = {}): Promise<S3Sandbox> {
    if (S3_ENDPOINT === null) throw new Error("MODELSYNC_TEST_S3_ENDPOINT is not set");
    const bucket = await freshBucket(hint);
    const prefix = opts.prefix ?? "team/models";
    const proxy = opts.proxy
      ? await S3Proxy.start(S3_ENDPOINT, opts.proxy === true ? {} : opts.proxy)
      : null;
    const spec = `s3://${bucket}${prefix === "" ? "" : `/${prefix}`}`;
    const sb = await Sandbox.create({ datastoreSpec: spec });
    // Hermetic: no shared config or credentials files, no instance metadata lookups.
    Object.assign(sb.env, {
      ...S3_TEST_ENV,
      AWS_ENDPOINT_URL_S3: proxy?.endpoint ?? S3_ENDPOINT,
      AWS_CONFIG_FILE: join(sb.root, "no-aws-config"),
      AWS_SHARED_CREDENTIALS_FILE: join(sb.root, "no-aws-credentials"),
      AWS_EC2_METADATA_DISABLED: "true",
      ...opts.env,
    });
    return new S3Sandbox(sb, bucket, prefix, proxy, new S3Store(bucket, prefix));
  }

  /** The datastore spec the repositories use: `s3://bucket/prefix`. */
  get spec(): string {
    return this.sb.datastoreSpec;
  }

  /** Kills the CLI processes, stops the proxy, removes the directories. */
  async dispose(): Promise<void> {
    await this.sb.dispose();
    await this.proxy?.close();
    this.store.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}

/** A manifest as the CLI stores it (the fields the tests read). */
export interface S3Manifest {
  model?: string;
  generation: number;
  files: { path: string; sha256: string; size: number; executable?: boolean }[];
}

/** Direct reads of an S3 datastore's layout on the test server. */
export class S3Store {
  #client: S3Client | null = null;

  constructor(readonly bucket: string, readonly prefix: string) {}

  get #s3(): S3Client {
    this.#client ??= new S3Client({
      endpoint: S3_ENDPOINT!,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      maxAttempts: 2,
    });
    return this.#client;
  }

  /** The full key of a path below the datastore prefix. */
  key(rel: string): string {
    return this.prefix === "" ? rel : `${this.prefix}/${rel}`;
  }

  /** Every object below the prefix + `under` (paths relative to the prefix, sorted) with its size and ETag. */
  async objects(under = ""): Promise<Map<string, { size: number; etag: string }>> {
    const out = new Map<string, { size: number; etag: string }>();
    const base = this.key("");
    let token: string | undefined;
    do {
      const page = await this.#s3.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.key(under),
          ContinuationToken: token,
        }),
      );
      for (const o of page.Contents ?? []) {
        out.set(o.Key!.slice(base.length), { size: o.Size ?? 0, etag: o.ETag ?? "" });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** Keys below the prefix + `under`, relative to the prefix, sorted. */
  async keys(under = ""): Promise<string[]> {
    return [...(await this.objects(under)).keys()];
  }

  /** The bytes of an object below the prefix, or null when it does not exist. */
  async get(rel: string): Promise<Uint8Array | null> {
    try {
      const res = await this.#s3.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.key(rel) }),
      );
      return await res.Body!.transformToByteArray();
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === "NoSuchKey" || e.$metadata?.httpStatusCode === 404) return null;
      throw err;
    }
  }

  /** Replaces an object below the prefix with `bytes` (to damage what the CLI stored). */
  async put(rel: string, bytes: Uint8Array | string): Promise<void> {
    await this.#s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: this.key(rel), Body: bytes }),
    );
  }

  /** Deletes an object below the prefix (missing is fine). */
  async delete(rel: string): Promise<void> {
    await this.#s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(rel) }));
  }

  /** An object parsed as JSON, or null when it does not exist or does not parse. */
  async json(rel: string): Promise<Record<string, unknown> | null> {
    const bytes = await this.get(rel);
    if (bytes === null) return null;
    try {
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return null;
    }
  }

  /** The lock record of `global` or a model ref, or null when it is free. */
  lock(key: string): Promise<Record<string, unknown> | null> {
    return this.json(key === "global" ? "leases/global" : `leases/models/${key}`);
  }

  /** Hashes of the stored blobs. */
  async blobs(): Promise<string[]> {
    return (await this.keys("blobs/"))
      .map((k) => k.split("/").pop()!)
      .filter((name) => /^[0-9a-f]{64}$/.test(name));
  }

  /** Every head and history record (key → parsed manifest); other objects are skipped. */
  async manifests(): Promise<Map<string, S3Manifest>> {
    const out = new Map<string, S3Manifest>();
    for (const key of [...await this.keys("heads/"), ...await this.keys("history/")]) {
      const doc = await this.json(key);
      if (doc !== null && Array.isArray(doc.files) && typeof doc.generation === "number") {
        out.set(key, doc as unknown as S3Manifest);
      }
    }
    return out;
  }

  /** The model's head (its current manifest), or null. */
  async current(model: string): Promise<S3Manifest | null> {
    return await this.json(`heads/${model}`) as S3Manifest | null;
  }

  /** Invariant 1: every manifest names only stored blobs of the right size. */
  async integrityProblems(): Promise<string[]> {
    const blobs = await this.objects("blobs/");
    const problems: string[] = [];
    for (const [key, m] of await this.manifests()) {
      for (const f of m.files) {
        if ((f as { link?: string }).link !== undefined) continue; // a link has no blob
        const pack = (f as { pack?: { blob: string; offset: number } }).pack;
        const p = pack === undefined
          ? undefined
          : blobs.get(`blobs/${pack.blob.slice(0, 2)}/${pack.blob}`);
        if (pack !== undefined && p !== undefined) {
          if (pack.offset + f.size > p.size) {
            problems.push(`${key} names ${f.path} in pack ${pack.blob} beyond its ${p.size} bytes`);
          }
          continue;
        }
        // A file's own blob; also where a packed file's content is when its pack is gone.
        const b = blobs.get(`blobs/${f.sha256.slice(0, 2)}/${f.sha256}`);
        if (b === undefined) problems.push(`${key} names ${f.path} = blob ${f.sha256}: missing`);
        else if (b.size !== f.size) {
          problems.push(`${key}: blob of ${f.path} has ${b.size} bytes, manifest says ${f.size}`);
        }
      }
    }
    return problems;
  }

  /** Closes the client's connections. */
  close(): void {
    this.#client?.destroy();
    this.#client = null;
  }
}
