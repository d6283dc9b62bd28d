import assert from "node:assert/strict";
import { formatStatus } from "./status.ts";

const none = { added: [], modified: [], deleted: [] };

Deno.test("formatStatus names what a user would do next", () => {
  const lines = formatStatus({
    schema: "modelsync.status/1",
    models: [
      { model: "a/new", local: none, base: null, remote: { generation: 4, state: "new" } },
      {
        model: "a/mine",
        local: { ...none, added: ["x"] },
        base: null,
        remote: { generation: null, state: "absent" },
      },
      {
        model: "a/old",
        local: { ...none, modified: ["y"] },
        base: 1,
        remote: { generation: 3, state: "ahead" },
      },
      { model: "a/same", local: none, base: 2 },
      { model: "a/back", local: none, base: 5, remote: { generation: 3, state: "diverged" } },
    ],
  });
  assert.deepEqual(lines, [
    `a/new   only in the datastore (generation 4); "modelsync pull a/new" brings it here`,
    "a/mine  1 added, 0 modified, 0 deleted; not in the datastore",
    "  A x",
    "a/old   0 added, 1 modified, 0 deleted; remote ahead (generation 3, base 1)",
    "  M y",
    "a/same  clean",
    `a/back  clean; the datastore's generation 3 is not newer than the one synced here (5; ` +
    `restored from a backup?): "modelsync push a/back" commits yours above both, ` +
    `"modelsync pull --theirs a/back" takes the datastore's`,
  ]);
  assert.deepEqual(formatStatus({ schema: "modelsync.status/1", models: [] }), ["No models."]);
});
