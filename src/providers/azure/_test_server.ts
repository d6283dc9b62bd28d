/**
 * The local Azure Blob Storage test server (Azurite), shared by the Azure
 * provider's tests and the end-to-end tests. The server is started with
 * `eval "$(scripts/services.sh start)"`, which exports
 * `MODELSYNC_TEST_AZURE_CONNECTION_STRING` (Azurite's well-known development
 * account, its `BlobEndpoint` on the port chosen).
 *
 * When the variable is absent, tests that need the server are ignored with
 * one message saying how to start it, unless `MODELSYNC_TEST_REQUIRE_SERVICES=1`
 * (CI), where they fail instead.
 *
 * @example
 * ```ts ignore
 * import { AZURE_TEST_ENV, azureTestOptions, freshContainer } from "./_test_server.ts";
 * Deno.test({ name: "round trip", ...azureTestOptions() }, async () => {
 *   const container = await freshContainer("rt");
 *   console.log(`azure://${container}/p`, AZURE_TEST_ENV);
 * });
 * ```
 * @module
 */
import { BlobServiceClient } from "@azure/storage-blob";
import { parseConnectionString } from "./config.ts";

const VAR = "MODELSYNC_TEST_AZURE_CONNECTION_STRING";
const START_HINT = 'eval "$(scripts/services.sh start)"';

/** The test server's connection string, or null when not set. */
export const AZURE_CONNECTION_STRING: string | null = Deno.env.get(VAR)?.trim() || null;

/** The test server's blob endpoint (`http://127.0.0.1:PORT/devstoreaccount1`), or null. */
export const AZURE_ENDPOINT: string | null = AZURE_CONNECTION_STRING === null
  ? null
  : (parseConnectionString(AZURE_CONNECTION_STRING).endpoint ?? null);

/** Environment for a subprocess (or a provider) talking to the test server. */
export const AZURE_TEST_ENV: Record<string, string> = AZURE_CONNECTION_STRING === null
  ? {}
  : { AZURE_STORAGE_CONNECTION_STRING: AZURE_CONNECTION_STRING };

let hinted = false;

/**
 * Options for a `Deno.test` that needs the server: `{ ignore: true }` when it
 * is not running (one hint printed per process), `{ ignore: false }` when it
 * is. Throws when `MODELSYNC_TEST_REQUIRE_SERVICES=1` and it is not running.
 */
export function azureTestOptions(): { ignore: boolean } {
  if (AZURE_CONNECTION_STRING !== null) return { ignore: false };
  if (Deno.env.get("MODELSYNC_TEST_REQUIRE_SERVICES") === "1") {
    throw new Error(
      `${VAR} is not set but MODELSYNC_TEST_REQUIRE_SERVICES=1: start Azurite with ${START_HINT}.`,
    );
  }
  if (!hinted) {
    hinted = true;
    console.error(`Azure tests ignored: ${VAR} is not set; start Azurite with ${START_HINT}`);
  }
  return { ignore: true };
}

let service: BlobServiceClient | undefined;

/** An SDK client for the test server's account (the development account's key). */
export function testService(): BlobServiceClient {
  if (AZURE_CONNECTION_STRING === null) throw new Error(`${VAR} is not set: run ${START_HINT}`);
  service ??= BlobServiceClient.fromConnectionString(AZURE_CONNECTION_STRING, {
    retryOptions: { maxTries: 2 },
  });
  return service;
}

let counter = 0;

/**
 * Creates a uniquely named container on the test server and returns its
 * name. `hint` (lowercased, other characters dropped) makes it recognisable.
 */
export async function freshContainer(hint: string): Promise<string> {
  const h = hint.toLowerCase().replace(/[^a-z0-9]/g, "").slice(0, 20) || "t";
  const rand = crypto.getRandomValues(new Uint8Array(4));
  const suffix = Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("");
  const name = `ms-${h}-${Deno.pid}-${counter++}-${suffix}`.slice(0, 63).replace(/-+$/, "");
  await testService().getContainerClient(name).create();
  return name;
}
