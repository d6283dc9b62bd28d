/**
 * End-to-end statement counts on a PostgreSQL datastore: a no-op pull (and
 * push and flush) costs a small fixed number of statements, the same with
 * 100 models as with 10: the zero-diff fast path lists the heads once.
 * Counted by the test proxy (tests/_pg_proxy.ts) in front of the server,
 * not by a hook in the product; directly and through PgBouncer.
 */
import assert from "node:assert/strict";
import { describe, expectCode, expectJson, type Repo } from "./_helpers.ts";
import { pgbouncerTestOptions, PgSandbox, pgTestOptions } from "./_pg.ts";

/**
 * The most statements a no-op run may send (measured: 4 transactions of 4
 * statements — BEGIN, the statement timeout, the statement, COMMIT — for
 * the schema check, the marker read, its create-if-absent and one listing
 * of the heads; plus the client's type lookup on its one connection).
 */
const NOOP_STATEMENTS = 17;
const NOOP_TRANSACTIONS = 4;

async function writeModels(repo: Repo, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    await repo.write(`models/fleet/m${String(i).padStart(3, "0")}/weights.bin`, `weights ${i}\n`);
  }
}

for (const pgbouncer of [false, true]) {
  const through = pgbouncer ? " through PgBouncer" : "";
  Deno.test({
    name:
      `PostgreSQL${through}: a no-op pull, push and flush cost the same few statements for 10 and 100 models`,
    ...(pgbouncer ? pgbouncerTestOptions() : pgTestOptions()),
    async fn() {
      await using pg = await PgSandbox.create("requests", { proxy: true, pgbouncer });
      const proxy = pg.proxy!;
      const a = await pg.sb.repo("a", { MODELSYNC_HOLDER: "alice" });
      const b = await pg.sb.repo("b", { MODELSYNC_HOLDER: "bob" });

      const measure = async (repo: Repo, command: string) => {
        proxy.reset();
        const res = expectCode(await repo.run([command, "--json"]), 0, command);
        const summary = expectJson(res, `modelsync.${command}/1`).summary as Record<
          string,
          number
        >;
        return {
          res,
          summary,
          statements: proxy.statements,
          transactions: proxy.transactions,
        };
      };
      const counts: Record<string, number[]> = {};
      for (const models of [10, 100]) {
        await writeModels(a, models === 10 ? 0 : 10, models);
        expectCode(await a.run(["push"]), 0, "set-up push");
        expectCode(await b.run(["pull"]), 0, "set-up pull");
        const pull = await measure(b, "pull");
        assert.equal(pull.summary.unchanged, models, describe(pull.res));
        const push = await measure(a, "push");
        assert.equal(push.summary.pushed, 0, describe(push.res));
        const flush = await measure(a, "flush");
        assert.equal(flush.summary.pushed, 0, describe(flush.res));
        for (const [name, m] of Object.entries({ pull, push, flush })) {
          const what = `no-op ${name} of ${models} models`;
          assert.ok(m.transactions >= 1, `${what}: the proxy saw no transaction`);
          assert.ok(
            m.statements <= NOOP_STATEMENTS && m.transactions <= NOOP_TRANSACTIONS,
            `${what}: ${m.statements} statements in ${m.transactions} transactions ` +
              `(bounds ${NOOP_STATEMENTS}, ${NOOP_TRANSACTIONS})\n${describe(m.res)}`,
          );
          (counts[name] ??= []).push(m.statements);
        }
      }
      // Fixed: 100 models cost what 10 do.
      for (const [name, [ten, hundred]] of Object.entries(counts)) {
        assert.equal(
          hundred,
          ten,
          `no-op ${name}: ${ten} statements for 10 models, ${hundred} for 100`,
        );
      }
      console.log(`statements per no-op run${through}: ${JSON.stringify(counts)}`);
    },
  });
}
