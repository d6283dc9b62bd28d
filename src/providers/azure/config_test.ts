import assert from "node:assert/strict";
import { UsageError } from "../../errors.ts";
import { parseDatastoreSpec } from "../../repo/datastore_spec.ts";
import { createProvider } from "../mod.ts";
import {
  azureConfigSchema,
  describeLocation,
  DEV_ACCOUNT,
  parseAzureSpec,
  resolveAzureConfig,
} from "./config.ts";

const CTX = { callTimeoutMs: 5_000, host: "h", pid: 1, baseDir: "/" };
const SECRET = "c2VjcmV0LWtleS1vZi10aGUtdGVzdC1hY2NvdW50LXRoYXQtaXMtbG9uZw==";
const ENV = { AZURE_STORAGE_ACCOUNT: "acme", AZURE_STORAGE_KEY: SECRET };

/** The one-line exit-2 error of creating a provider from a spec string or a mapping. */
async function usage(config: string | Record<string, unknown>): Promise<string> {
  const c = typeof config === "string"
    ? parseDatastoreSpec(config, "/")
    : { type: "azure", ...config };
  const err = await createProvider(c, CTX).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof UsageError, `expected UsageError, got ${err}`);
  assert.equal(err.exitCode, 2);
  assert.ok(!err.message.includes("\n"), err.message);
  assert.ok(!err.message.includes(SECRET), err.message);
  return err.message;
}

/** The UsageError of resolving `config` against `env`. */
function refused(env: Record<string, string>, config = { container: "models", prefix: "" }) {
  try {
    resolveAzureConfig(config, env);
  } catch (err) {
    assert.ok(err instanceof UsageError, String(err));
    for (const v of Object.values(env)) {
      if (v.length > 12) assert.ok(!err.message.includes(v), err.message);
    }
    return err.message;
  }
  assert.fail("resolveAzureConfig accepted it");
}

Deno.test("azure spec: container, prefix, account and endpoint; the spec form's errors", async () => {
  assert.deepEqual(parseAzureSpec("azure://models/team/vision/"), {
    container: "models",
    prefix: "/team/vision/",
  });
  const parsed = azureConfigSchema.parse(
    parseAzureSpec("azure://models/team?account=acme&endpoint=http://127.0.0.1:10000/acme"),
  );
  assert.deepEqual(parsed, {
    container: "models",
    prefix: "team",
    account: "acme",
    endpoint: "http://127.0.0.1:10000/acme",
  });
  assert.match(await usage("azure://"), /names no container\. Use azure:\/\/container\/prefix/);
  assert.match(await usage("azure://Models/p"), /"container": not a valid Azure container name/);
  assert.match(await usage("azure://a--b/p"), /not a valid Azure container name/);
  assert.match(
    await usage("azure://models/a/../b"),
    /"prefix": has an empty, "\." or "\.\." segment/,
  );
  assert.match(await usage("azure://models/p?region=x"), /unknown key "region"/);
  assert.match(await usage("azure://models/p?account=a&account=b"), /sets "account" twice/);
  assert.match(await usage("azure://models/p#x"), /#fragment/);
});

Deno.test("azure config: credentials are refused from the spec and modelsync.yaml, never echoed", async () => {
  for (const key of ["key", "accountKey", "sasToken", "sig", "connectionString"]) {
    const msg = await usage({ container: "models", [key]: SECRET });
    assert.match(msg, new RegExp(`"${key}": credentials are never read from modelsync\\.yaml`));
    assert.match(msg, /AZURE_STORAGE_CONNECTION_STRING/);
    const viaSpec = await usage(`azure://models/p?${key}=${encodeURIComponent(SECRET)}`);
    assert.match(viaSpec, /^Invalid datastore "azure:\/\/models\/p\?\*\*\*" in modelsync\.yaml:/);
  }
  const sasUrl = `https://acme.blob.core.windows.net?sv=2024&sig=${SECRET}`;
  assert.match(
    await usage({ container: "models", endpoint: sasUrl }),
    /holds a user name, password or query/,
  );
  assert.match(
    await usage(`azure://models/p?endpoint=${encodeURIComponent(sasUrl)}`),
    /its endpoint URL holds/,
  );
  assert.match(
    await usage(`azure://acme:${SECRET}@models/p`),
    /^Invalid datastore "azure:\/\/\*\*\*"/,
  );
});

Deno.test("azure config: account, credentials and endpoint from the environment", () => {
  const base = { container: "models", prefix: "team" };
  const key = resolveAzureConfig(base, ENV);
  assert.equal(key.endpoint, "https://acme.blob.core.windows.net");
  assert.deepEqual(key.credential, { kind: "key", key: SECRET });
  assert.equal(describeLocation(key), "azure://models/team (account acme)");

  const sas = resolveAzureConfig(base, {
    AZURE_STORAGE_ACCOUNT: "acme",
    AZURE_STORAGE_SAS_TOKEN: "?sv=2024-01-01&sig=abc",
  });
  assert.deepEqual(sas.credential, { kind: "sas", token: "sv=2024-01-01&sig=abc" });

  const dev = resolveAzureConfig(base, {
    AZURE_STORAGE_CONNECTION_STRING: "UseDevelopmentStorage=true",
  });
  assert.equal(dev.account, DEV_ACCOUNT.name);
  assert.equal(dev.endpoint, DEV_ACCOUNT.endpoint);
  assert.equal(
    describeLocation(dev),
    "azure://models/team (endpoint http://127.0.0.1:10000/devstoreaccount1)",
  );

  const cs = `DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=${SECRET};` +
    "EndpointSuffix=core.usgovcloudapi.net";
  const gov = resolveAzureConfig(base, { AZURE_STORAGE_CONNECTION_STRING: cs, ...ENV });
  assert.equal(gov.endpoint, "https://acme.blob.core.usgovcloudapi.net");
  assert.equal(gov.source, "AZURE_STORAGE_CONNECTION_STRING", "the connection string wins");

  const azurite = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
    `AccountKey=${DEV_ACCOUNT.key};BlobEndpoint=http://127.0.0.1:41234/devstoreaccount1/;`;
  const a = resolveAzureConfig(base, { AZURE_STORAGE_CONNECTION_STRING: azurite });
  assert.equal(a.endpoint, "http://127.0.0.1:41234/devstoreaccount1");
  const sasCs =
    `BlobEndpoint=https://acme.blob.core.windows.net/;SharedAccessSignature=sv=1&sig=${SECRET}`;
  const s = resolveAzureConfig(base, { AZURE_STORAGE_CONNECTION_STRING: sasCs });
  assert.equal(s.account, "acme");
  assert.equal(s.credential.kind, "sas");
  const custom = resolveAzureConfig({ ...base, endpoint: "https://blob.example.test/" }, ENV);
  assert.equal(custom.endpoint, "https://blob.example.test");
});

Deno.test("azure config: missing or contradictory environment is a one-line error naming variables", () => {
  assert.match(
    refused({}),
    /^No Azure storage account is named: set AZURE_STORAGE_CONNECTION_STRING/,
  );
  assert.match(
    refused({ AZURE_STORAGE_ACCOUNT: "acme" }),
    /^No credentials for storage account acme: set AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN/,
  );
  assert.match(
    refused(ENV, { container: "models", prefix: "", account: "other" } as never),
    /names storage account other, but AZURE_STORAGE_ACCOUNT is for account acme/,
  );
  assert.match(
    refused({ AZURE_STORAGE_CONNECTION_STRING: "AccountName=acme;pasted-without-a-name" }),
    /^Invalid AZURE_STORAGE_CONNECTION_STRING: a part of it is not Name=value/,
  );
  assert.match(
    refused({ AZURE_STORAGE_CONNECTION_STRING: "AccountName=acme;EndpointSuffix=x" }),
    /neither AccountKey nor SharedAccessSignature/,
  );
  assert.match(
    refused({
      AZURE_STORAGE_CONNECTION_STRING: `AccountName=acme;AccountKey=${SECRET};` +
        `BlobEndpoint=https://u:${SECRET}@acme.blob.core.windows.net`,
    }),
    /its BlobEndpoint holds a user name, password or query/,
  );
  assert.match(
    refused({ AZURE_STORAGE_ACCOUNT: "Not_Valid", AZURE_STORAGE_KEY: SECRET }),
    /3-24 lowercase/,
  );
});
