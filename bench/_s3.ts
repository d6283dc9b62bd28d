/**
 * What the S3 figures share: whether the local S3 server (moto) answers, a
 * bucket of their own (removed at the end), the proxy every client goes
 * through (`tests/_s3_proxy.ts`: it counts requests and can delay each by a
 * set latency), and the environment that points modelsync and rclone at it.
 * rclone's S3 remote `bench:` is configured only by environment variables
 * (`RCLONE_CONFIG_BENCH_*`), with an empty config file of the run's own.
 *
 * @example
 * ```ts ignore
 * import { withS3 } from "./_s3.ts";
 * const rows = await withS3(ctx, { latencyMs: 30 }, async (s3) => {
 *   console.log(s3.proxy.endpoint, s3.bucket, s3.spec("modelsync-1"));
 *   return [];
 * });
 * ```
 * @module
 */
import { join } from "node:path";
import type { BenchContext } from "./_context.ts";
import type { S3Proxy } from "../tests/_s3_proxy.ts";

/** Credentials of the local test server (moto takes any). */
export const CREDENTIALS = {
  AWS_ACCESS_KEY_ID: "test",
  AWS_SECRET_ACCESS_KEY: "test",
  AWS_REGION: "us-east-1",
};

/** Why the S3 figures cannot run here, or null. */
export async function s3Unavailable(): Promise<string | null> {
  const endpoint = Deno.env.get("MODELSYNC_TEST_S3_ENDPOINT");
  if (!endpoint) return 'no S3 server: run eval "$(scripts/services.sh start)" first';
  try {
    const res = await fetch(endpoint, { signal: AbortSignal.timeout(5_000) });
    await res.body?.cancel();
  } catch (err) {
    return `no S3 server answers at ${endpoint} (${(err as Error).name}): ` +
      'run eval "$(scripts/services.sh start)"';
  }
  const ok = await Deno.stat(new URL("../src/providers/s3/mod.ts", import.meta.url))
    .then(() => true, () => false);
  return ok ? null : "the S3 provider (src/providers/s3/) is not built";
}

/** One S3 figure's bucket behind its proxy. */
export interface S3Bench {
  proxy: S3Proxy;
  bucket: string;
  /** The directory of the figure (rclone's empty config file lives there). */
  dir: string;
  /** Environment of a modelsync process (credentials). */
  env: Record<string, string>;
  /** Environment of an rclone process: the remote `bench:` through the proxy. */
  rcloneEnv: Record<string, string>;
  /** The datastore spec of `prefix` in the bucket, through the proxy. */
  spec(prefix: string): string;
}

/**
 * Runs `fn` with a fresh bucket behind a proxy delaying every request by
 * `latencyMs`; closes the proxy and removes the bucket afterwards (unless
 * --keep).
 */
export async function withS3<T>(
  ctx: BenchContext,
  opts: { latencyMs: number; name: string },
  fn: (s3: S3Bench) => Promise<T>,
): Promise<T> {
  const upstream = Deno.env.get("MODELSYNC_TEST_S3_ENDPOINT")!;
  const { S3Proxy } = await import("../tests/_s3_proxy.ts");
  const proxy = await S3Proxy.start(upstream, { latencyMs: opts.latencyMs });
  const bucket = await createBucket(upstream);
  const dir = await ctx.fresh(opts.name);
  const rcloneConf = join(dir, "rclone.conf");
  await Deno.writeTextFile(rcloneConf, "");
  const s3: S3Bench = {
    proxy,
    bucket,
    dir,
    env: { ...CREDENTIALS },
    rcloneEnv: {
      ...CREDENTIALS,
      RCLONE_CONFIG: rcloneConf,
      RCLONE_CONFIG_BENCH_TYPE: "s3",
      RCLONE_CONFIG_BENCH_PROVIDER: "Other",
      RCLONE_CONFIG_BENCH_ENDPOINT: proxy.endpoint,
      RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: "test",
      RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: "test",
      RCLONE_CONFIG_BENCH_REGION: "us-east-1",
      RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: "true",
    },
    spec: (prefix) => `s3://${bucket}/${prefix}?endpoint=${proxy.endpoint}`,
  };
  ctx.log(
    `${opts.name}: bucket ${bucket} via proxy ${proxy.endpoint}` +
      (opts.latencyMs > 0 ? ` (+${opts.latencyMs} ms per request)` : ""),
  );
  try {
    return await fn(s3);
  } finally {
    await proxy.close();
    if (ctx.opts.keep) ctx.log(`kept bucket ${bucket}`);
    else await removeBucket(upstream, bucket).catch((err) => ctx.log(`${err}`));
  }
}

function client(endpoint: string) {
  return import("@aws-sdk/client-s3").then((sdk) => ({
    sdk,
    s3: new sdk.S3Client({
      endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    }),
  }));
}

/** Deletes every object of the bucket (1,000 per request), then the bucket. */
async function removeBucket(endpoint: string, bucket: string): Promise<void> {
  const { sdk, s3 } = await client(endpoint);
  try {
    while (true) {
      const page = await s3.send(new sdk.ListObjectsV2Command({ Bucket: bucket }));
      const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
      if (keys.length === 0) break;
      await s3.send(new sdk.DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
    }
    await s3.send(new sdk.DeleteBucketCommand({ Bucket: bucket }));
  } finally {
    s3.destroy();
  }
}

async function createBucket(endpoint: string): Promise<string> {
  const { sdk, s3 } = await client(endpoint);
  const rand = Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => b.toString(16))
    .join("");
  const bucket = `modelsync-bench-${Deno.pid}-${rand}`;
  try {
    await s3.send(new sdk.CreateBucketCommand({ Bucket: bucket }));
  } finally {
    s3.destroy();
  }
  return bucket;
}
