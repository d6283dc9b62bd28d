/**
 * Helpers for the end-to-end tests on an Azure datastore: a
 * {@linkcode Sandbox} whose repositories use a fresh container on the local
 * Azurite (started with `eval "$(scripts/services.sh start)"`), optionally
 * through the test proxy of `./_s3_proxy.ts` (plain HTTP: it counts
 * requests, can go down and come back, and can drop conditional headers),
 * and direct reads of the container to check what the CLI stored.
 *
 * Direct reads go to Azurite itself, never through the proxy, so they do not
 * show up in its counts.
 *
 * @example
 * ```ts ignore
 * import { AzureSandbox, azureTestOptions } from "./_azure.ts";
 * Deno.test({ name: "push", ...azureTestOptions() }, async () => {
 *   await using az = await AzureSandbox.create("push", { proxy: true });
 *   const repo = await az.sb.repo("a");
 *   await repo.write("models/vpc/m1/a.txt", "hello");
 *   await repo.run(["push"]);
 *   console.log(az.proxy!.count, await az.keys("heads/"));
 * });
 * ```
 * @module
 */
import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  type ContainerClient,
  generateAccountSASQueryParameters,
  StorageSharedKeyCredential,
} from "@azure/storage-blob";
import {
  AZURE_CONNECTION_STRING,
  AZURE_ENDPOINT,
  azureTestOptions,
  freshContainer,
  testService,
} from "../src/providers/azure/_test_server.ts";
import { DEV_ACCOUNT } from "../src/providers/azure/config.ts";
import { Sandbox } from "./_helpers.ts";
import { S3Proxy, type S3ProxyOptions } from "./_s3_proxy.ts";

export { AZURE_CONNECTION_STRING, AZURE_ENDPOINT, azureTestOptions, DEV_ACCOUNT };

/** How to build an {@linkcode AzureSandbox}. */
export interface AzureSandboxOptions {
  /** Put the test proxy between the CLI and Azurite (`true` or its options). */
  proxy?: boolean | S3ProxyOptions;
  /** Name prefix of the datastore inside the container (default `team/models`). */
  prefix?: string;
  /**
   * Sign with an account SAS token instead of the account key (a SAS signs
   * the URL only, so the proxy may drop headers without breaking it).
   */
  sas?: boolean;
}

/** The connection string of the development account with its blob endpoint at `endpoint`. */
export function connectionString(endpoint: string, key = DEV_ACCOUNT.key): string {
  return `DefaultEndpointsProtocol=http;AccountName=${DEV_ACCOUNT.name};AccountKey=${key};` +
    `BlobEndpoint=${endpoint};`;
}

/** A connection string signing with the SAS token `sas` instead of a key. */
export function sasConnectionString(endpoint: string, sas: string): string {
  return `BlobEndpoint=${endpoint};SharedAccessSignature=${sas}`;
}

/** An account SAS token of the development account (blob service, `permissions`, 1 hour). */
export function devAccountSas(permissions = "rwdlac"): string {
  return generateAccountSASQueryParameters(
    {
      expiresOn: new Date(Date.now() + 3_600_000),
      permissions: AccountSASPermissions.parse(permissions),
      resourceTypes: AccountSASResourceTypes.parse("sco").toString(),
      services: AccountSASServices.parse("b").toString(),
    },
    new StorageSharedKeyCredential(DEV_ACCOUNT.name, DEV_ACCOUNT.key),
  ).toString();
}

/** A sandbox whose datastore is a fresh container on Azurite. */
export class AzureSandbox {
  private constructor(
    readonly sb: Sandbox,
    readonly container: string,
    readonly prefix: string,
    readonly proxy: S3Proxy | null,
    /** The endpoint the CLI reaches (the proxy's, or Azurite's). */
    readonly endpoint: string,
  ) {}

  /** A new container (named after `hint`), a proxy when asked for, and a sandbox using them. */
  static async create(hint: string, opts: AzureSandboxOptions = {}): Promise<AzureSandbox> {
    if (AZURE_ENDPOINT === null) {
      throw new Error("MODELSYNC_TEST_AZURE_CONNECTION_STRING is not set");
    }
    const container = await freshContainer(hint);
    const prefix = opts.prefix ?? "team/models";
    const upstream = new URL(AZURE_ENDPOINT);
    const proxy = opts.proxy
      ? await S3Proxy.start(upstream.origin, opts.proxy === true ? {} : opts.proxy)
      : null;
    const endpoint = proxy === null ? AZURE_ENDPOINT : `${proxy.endpoint}${upstream.pathname}`;
    const spec = `azure://${container}${prefix === "" ? "" : `/${prefix}`}`;
    const sb = await Sandbox.create({ datastoreSpec: spec });
    sb.env.AZURE_STORAGE_CONNECTION_STRING = opts.sas
      ? sasConnectionString(endpoint, devAccountSas())
      : connectionString(endpoint);
    return new AzureSandbox(sb, container, prefix, proxy, endpoint);
  }

  /** The datastore spec the repositories use: `azure://container/prefix`. */
  get spec(): string {
    return this.sb.datastoreSpec;
  }

  get #container(): ContainerClient {
    return testService().getContainerClient(this.container);
  }

  /** The full blob name of a name below the datastore prefix. */
  name(rel: string): string {
    return this.prefix === "" ? rel : `${this.prefix}/${rel}`;
  }

  /** Names below the prefix + `under`, relative to the prefix, sorted. */
  async keys(under = ""): Promise<string[]> {
    const base = this.name("");
    const out: string[] = [];
    for await (const b of this.#container.listBlobsFlat({ prefix: this.name(under) })) {
      out.push(b.name.slice(base.length));
    }
    return out.sort();
  }

  /** The model's head parsed, or null when there is none. */
  async head(model: string): Promise<{ generation: number } | null> {
    try {
      const buf = await this.#container.getBlockBlobClient(this.name(`heads/${model}`))
        .downloadToBuffer();
      return JSON.parse(new TextDecoder().decode(buf));
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null;
      throw err;
    }
  }

  /** Kills the CLI processes, stops the proxy, removes the directories and the container. */
  async dispose(): Promise<void> {
    await this.sb.dispose();
    await this.proxy?.close();
    await this.#container.deleteIfExists().catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
