// The minifier inside the worker (workerd via Miniflare): the same 8 MB page through a rule
// that minifies and one that does not (both bypass the cache; compression off to isolate the
// minifier), interleaved; the difference is the minifier's cost in wasm.
// Run: npm run bench:minify (after the native figures).
import { request } from 'node:http';
import { startOrigin } from './lib.mjs';
import { startEdge, wranglerConfig } from '../e2e/harness.mjs';

const origin = await startOrigin();
const cfg = wranglerConfig().vars.EDGELAYER;
const rules = [
  { name: 'bench-min', path: '/lab/bench/min', cache: 'bypass', minify: true, compress: false },
  { name: 'bench-plain', path: '/lab/bench/plain', cache: 'bypass', minify: false, compress: false },
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
const min = [], plain = [];
let outBytes = 0;
for (let i = 0; i < 7; i++) {
  const a = await get('/lab/bench/min');
  outBytes = a.bytes;
  min.push(a.ms);
  plain.push((await get('/lab/bench/plain')).ms);
}
const mb = (unit.length * n) / 1e6;
const [m, p] = [median(min), median(plain)];
console.log(`\nin the worker (Miniflare/workerd, wasm), ${mb.toFixed(1)} MB page -> ${(outBytes / 1e6).toFixed(1)} MB, median of 7 interleaved:`);
console.log(`  through a minifying rule     ${m.toFixed(0)} ms  (${(mb / (m / 1000)).toFixed(1)} MB/s end to end)`);
console.log(`  through a non-minifying rule ${p.toFixed(0)} ms  (${(mb / (p / 1000)).toFixed(1)} MB/s end to end)`);
console.log(`  minifier cost in wasm        ${(m - p).toFixed(0)} ms  (${(mb / ((m - p) / 1000)).toFixed(1)} MB/s)`);
await edge.dispose();
process.exit(0);
