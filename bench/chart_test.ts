import assert from "node:assert/strict";
import { chartSvg, panelsFromRows, xmlEscape } from "./chart.ts";
import { row } from "./report.ts";

/** Every opened element is closed in order (a small well-formedness check). */
function assertWellFormed(svg: string): void {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    const [, close, name, self] = m;
    if (self) continue;
    if (close) assert.equal(stack.pop(), name, `</${name}> closes <${stack.at(-1)}>`);
    else stack.push(name);
  }
  assert.deepEqual(stack, [], "unclosed elements");
  assert.doesNotMatch(svg.replace(/&(amp|lt|gt|quot);/g, ""), /&/, "unescaped &");
}

const rows = [
  row({
    figure: "1",
    name: "1-file flush during a 100 MB flush, scoped",
    unit: "s",
    samples: [0.3],
    peer: "same flush alone",
    peerSamples: [0.2],
    target: { max: 2, of: "ratio" },
  }),
  row({
    figure: "1",
    name: "1-file flush during a 100 MB flush, global",
    unit: "s",
    samples: [1.5],
    peer: "same flush alone",
    peerSamples: [0.2],
  }),
  row({
    figure: "2",
    name: "filesystem (context): 8 concurrent flushes (200 × 16 KiB each)",
    unit: "s",
    samples: [1],
    peer: "global path",
    peerSamples: [2],
  }),
  row({
    figure: "10",
    name: "S3 + 100 ms: 8 concurrent flushes of different models (200 × 16 KiB each), scoped",
    unit: "s",
    samples: [6],
    peer: "one of them alone",
    peerSamples: [3],
    target: { max: 2, of: "ratio" },
  }),
  row({
    figure: "10",
    name: "S3 + 100 ms: 8 concurrent flushes of different models (200 × 16 KiB each), global " +
      "(context)",
    unit: "s",
    samples: [12],
    peer: "one of them alone",
    peerSamples: [3],
  }),
  row({
    figure: "10",
    name: "S3 + 100 ms: 1-file flush during a 100 MB flush of another model, scoped",
    unit: "s",
    samples: [1.8],
    peer: "same flush alone",
    peerSamples: [1.2],
    target: { max: 1.5, of: "ratio" },
  }),
];

Deno.test("the chart has the S3 and the filesystem panels, labelled with seconds and ratios", () => {
  const panels = panelsFromRows(rows);
  assert.deepEqual(panels.map((p) => p.bars.length), [2, 3, 3, 2]);
  assert.match(panels[0].title, /^S3 \+ 100 ms: .*100 MB flush of another model/);
  assert.match(panels[1].title, /^S3 \+ 100 ms: 8 concurrent flushes: wall time/);
  assert.match(panels[2].title, /^Filesystem \(context\): .*100 MB flush/);
  assert.match(panels[3].title, /^Filesystem \(context\): 8 concurrent flushes: wall time/);
  assert.deepEqual(panels[1].bars.map((b) => b.seconds), [3, 6, 12]);
  const svg = chartSvg(panels, "quick run <test> & co");
  assertWellFormed(svg);
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /1\.50× alone/);
  assert.match(svg, /0\.50× global/);
  assert.match(svg, /2\.00× alone/);
  assert.match(svg, /4\.00× alone/);
  assert.match(svg, /prefers-color-scheme: dark/);
  assert.match(svg, /&lt;test&gt; &amp; co/);
});

Deno.test("a figure without a number says skipped; no figures, no bars", () => {
  const skippedBar = chartSvg([{ title: "t", bars: [{ label: "scoped", seconds: null }] }]);
  assertWellFormed(skippedBar);
  assert.match(skippedBar, />skipped</);
  const svg = chartSvg(panelsFromRows([]));
  assertWellFormed(svg);
  assert.doesNotMatch(svg, /<rect/);
  assert.equal(xmlEscape(`a<b>"&`), "a&lt;b&gt;&quot;&amp;");
});
