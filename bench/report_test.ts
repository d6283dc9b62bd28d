import assert from "node:assert/strict";
import { median, notes, peerRow, ratio, row, skipped, table, verdict } from "./report.ts";
import { parseArgs } from "./main.ts";

Deno.test("median of odd and even counts, null when empty", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([]), null);
});

Deno.test("ratio is null when a side is missing or zero", () => {
  assert.equal(ratio(1, 4), 0.25);
  assert.equal(ratio(1, 0), null);
  assert.equal(ratio(null, 1), null);
  assert.equal(ratio(1, undefined), null);
});

Deno.test("verdict: PASS at or under the target, MISS over it, INFO without one", () => {
  assert.equal(verdict(1.5, { max: 1.5, of: "ratio" }), "PASS");
  assert.equal(verdict(1.51, { max: 1.5, of: "ratio" }), "MISS");
  assert.equal(verdict(1, undefined), "INFO");
  assert.equal(verdict(null, { max: 1, of: "value" }), "SKIP");
});

Deno.test("row judges the ratio of medians or the median itself", () => {
  const r = row({
    figure: "3",
    name: "no-op push",
    unit: "s",
    samples: [0.9, 1.0, 5.0],
    peer: "git status",
    peerSamples: [0.5, 0.5, 0.6],
    target: { max: 1.5, of: "ratio" },
  });
  assert.equal(r.median, 1.0);
  assert.equal(r.peerMedian, 0.5);
  assert.equal(r.ratio, 2);
  assert.equal(r.verdict, "MISS");
  const m = row({
    figure: "6",
    name: "memory",
    unit: "MiB",
    samples: [150],
    target: { max: 200, of: "value" },
  });
  assert.equal(m.verdict, "PASS");
});

Deno.test("a skipped row keeps its reason in the table and has no number", () => {
  const s = skipped("5", "S3", "no S3 server");
  assert.equal(s.median, null);
  const t = table([s]);
  assert.match(t, /SKIP \(no S3 server\)/);
  assert.equal(t.split("\n").length, 3);
});

Deno.test("parseArgs: quick defaults to 3 runs, --only and --runs are checked", () => {
  assert.equal(parseArgs(["--quick"]).runs, 3);
  assert.equal(parseArgs([]).runs, 5);
  assert.deepEqual([...parseArgs(["--only", "1,2"]).only], ["1", "2"]);
  assert.equal(parseArgs(["--runs=7"]).runs, 7);
  assert.throws(() => parseArgs(["--only", "11"]), /unknown figure 11/);
  assert.deepEqual([...parseArgs(["--only", "7,10"]).only], ["7", "10"]);
  assert.throws(() => parseArgs(["--runs", "0"]), /whole number/);
  assert.throws(() => parseArgs(["--fast"]), /unknown option --fast/);
});

Deno.test("a missing peer keeps the modelsync median but gives no ratio and SKIP", () => {
  const r = peerRow({
    figure: "3",
    name: "no-op push",
    unit: "s",
    samples: [1, 2, 3],
    peer: "git status",
    peerSamples: [],
    target: { max: 1.5, of: "ratio" },
  }, "git not installed");
  assert.equal(r.median, 2);
  assert.equal(r.ratio, undefined);
  assert.equal(r.verdict, "SKIP");
  assert.equal(r.note, "git not installed");
});

Deno.test("notes lists the notes of measured rows, not of skipped ones (the table has those)", () => {
  const rows = [
    row({ figure: "9", name: "first push", unit: "s", samples: [1], note: "475 requests" }),
    row({ figure: "9", name: "no-op", unit: "s", samples: [1] }),
    skipped("10", "concurrent", "no S3 server"),
  ];
  assert.equal(notes(rows), "- 9 first push: 475 requests");
  assert.equal(notes([]), "");
});
