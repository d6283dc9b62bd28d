/**
 * The shared end-to-end suite (tests/_provider_suite.ts) on a filesystem
 * datastore in a temporary directory; the S3, PostgreSQL and Azure test
 * files register it for their datastores.
 */
import { Sandbox } from "./_helpers.ts";
import { providerSuite } from "./_provider_suite.ts";

providerSuite({
  name: "filesystem (suite)",
  testOptions: () => ({}),
  async create() {
    const sb = await Sandbox.create();
    return { sb, dispose: () => sb.dispose() };
  },
});
