/**
 * The SQLite example passes modelsync's conformance kit, imported the way an
 * outside author imports it: through the package's `./testing` export.
 */
import { hostname } from "node:os";
import { type Provider, runConformance } from "@modelsync/cli/testing";
import sqliteProvider from "./mod.ts";

/** A fresh database in a new temp directory, removed when the provider is closed. */
export async function freshSqlite(pageSize = 7): Promise<Provider> {
  const dir = await Deno.makeTempDir({ prefix: "modelsync-sqlite-" });
  const config = sqliteProvider.configSchema.parse({ path: "store.db", pageSize });
  const p = await sqliteProvider.create(config, {
    callTimeoutMs: 10_000,
    // The kit plants records from this host.
    host: hostname(),
    pid: Deno.pid,
    baseDir: dir,
  });
  await p.init();
  const close = p.close.bind(p);
  p.close = async () => {
    await close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return p;
}

Deno.test("the SQLite example provider passes the conformance kit", async (t) => {
  // 7 rows per page, so every listing the kit makes spans several pages.
  await runConformance(t, { name: "sqlite", factory: () => freshSqlite(7) });
});
