// The minifier inside the worker (workerd via Miniflare): the same 8 MB page through a rule
// that minifies, one that only runs lol_html with one handler (the per-response nonce pass:
// the streaming floor in wasm) and one that does not touch the body (all bypass the cache;
// compression off to isolate the minifier), interleaved; the differences are the costs in
// wasm. With EDGELAYER_MINIFY_HTML_PY (a Python with minify-html), the same page through
// minify-html natively, in the same run.
// Run: npm run bench:minify (after the native figures).
import { request } from 'node:http';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { startOrigin } from './lib.mjs';
import { startEdge, wranglerConfig } from '../e2e/harness.mjs';

const origin = await startOrigin();
const cfg = wranglerConfig().vars.EDGELAYER;
const rules = [
  { name: 'bench-min', path: '/lab/bench/min', cache: 'bypass', minify: true, compress: false },
  { name: 'bench-plain', path: '/lab/bench/plain', cache: 'bypass', minify: false, compress: false },
  { name: 'bench-noop', path: '/lab/bench/noop', cache: 'bypass', minify: false, compress: false, csp_nonce: true, headers: 'html' },
  ...cfg.rules,
];
const edge = await startEdge({ originUrl: origin.url, vars: { EDGELAYER: { ...cfg, rules } } });
const unit = '<div class="row">\n    <p>Some   text   here, <a href="/x">a link</a></p>\n    <!-- note -->\n</div>\n';
const n = Math.ceil((8 * 1024 * 1024) / unit.length);
const q = `?header=${encodeURIComponent('Content-Type: text/html')}&body=${encodeURIComponent(unit)}&repeat=${n}`;
const get = (path) =>
  new Promise((resolve, reject) => {
    const t = performance.now();
    const r = request(edge.url + path + q, { headers: { 'accept-encoding': 'identity' } }, (res) => {
      let bytes = 0;
      res.on('data', (c) => (bytes += c.length));
      res.on('end', () => resolve({ ms: performance.now() - t, bytes }));
    });
    r.on('error', reject);
    r.end();
  });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
await get('/lab/bench/min');
await get('/lab/bench/plain');
await get('/lab/bench/noop');
const min = [], plain = [], noop = [];
let outBytes = 0;
for (let i = 0; i < 7; i++) {
  const a = await get('/lab/bench/min');
  outBytes = a.bytes;
  min.push(a.ms);
  plain.push((await get('/lab/bench/plain')).ms);
  noop.push((await get('/lab/bench/noop')).ms);
}
const mb = (unit.length * n) / 1e6;
const [m, p, o] = [median(min), median(plain), median(noop)];
console.log(`\nin the worker (Miniflare/workerd, wasm), ${mb.toFixed(1)} MB page -> ${(outBytes / 1e6).toFixed(1)} MB, median of 7 interleaved:`);
console.log(`  through a minifying rule              ${m.toFixed(0)} ms  (${(mb / (m / 1000)).toFixed(1)} MB/s end to end)`);
console.log(`  through a lol_html pass (nonce only)  ${o.toFixed(0)} ms  (${(mb / (o / 1000)).toFixed(1)} MB/s end to end)`);
console.log(`  through a rule that leaves the body   ${p.toFixed(0)} ms  (${(mb / (p / 1000)).toFixed(1)} MB/s end to end)`);
console.log(`  minifier in wasm                      ${(m - p).toFixed(0)} ms  (${(mb / ((m - p) / 1000)).toFixed(1)} MB/s)`);
console.log(`  lol_html one-handler pass in wasm     ${(o - p).toFixed(0)} ms  (${(mb / Math.max(o - p, 1) * 1000).toFixed(1)} MB/s)`);
const python = process.env.EDGELAYER_MINIFY_HTML_PY;
if (python) {
  const dir = 'target/corpus/bench-page';
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/page.html`, unit.repeat(n));
  const out = execFileSync(python, ['tests/bench/minify_html_peer.py', dir, `${dir}-minify-html`, '7'], { encoding: 'utf8' }).trim();
  console.log(`  minify-html, native, same page        ${out.replace('minify-html ', '')} (median of 7)`);
}
await edge.dispose();
process.exit(0);
