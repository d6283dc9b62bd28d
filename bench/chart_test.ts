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
    name: "8 concurrent flushes (200 × 16 KiB each)",
    unit: "s",
    samples: [1],
    peer: "global path",
    peerSamples: [2],
    target: { max: 0.6, of: "ratio" },
  }),
];

Deno.test("the chart has both panels, labelled with seconds and ratios", () => {
  const panels = panelsFromRows(rows);
  assert.equal(panels.length, 2);
  assert.match(panels[0].title, /100 MB flush/);
  const svg = chartSvg(panels, "quick run <test> & co");
  assertWellFormed(svg);
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /1\.50× alone/);
  assert.match(svg, /0\.50× global/);
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
