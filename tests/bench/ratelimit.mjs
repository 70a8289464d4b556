// Rate-limit benchmark (issue 6): added latency of a limited request (one Durable Object
// round trip) versus an unlimited one, same route and origin answer, through `wrangler dev`;
// and a refused request of a key in the penalty box, answered from the isolate's memory of
// refused keys (no object call; its non-2xx column counts the 429s).
// Run: npm run bench:ratelimit
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startOrigin, startWrangler, compare, table } from './lib.mjs';

mkdirSync(join(ROOT, 'target/bench'), { recursive: true });
const extra = `
[vars.EDGELAYER.rate_limits.bench]
limit = 4000000000
window = "1d"
key = ["ip"]

[[vars.EDGELAYER.rules]]
name = "bench-limited"
path = "/lab/bench/limited"
cache = "bypass"
rate_limit = "bench"

[vars.EDGELAYER.rate_limits.bench-boxed]
limit = 1
window = "1d"
key = ["ip"]
block_for = "1d"

[[vars.EDGELAYER.rules]]
name = "bench-refused"
path = "/lab/bench/refused"
cache = "bypass"
rate_limit = "bench-boxed"

[[vars.EDGELAYER.rules]]
name = "bench-unlimited"
path = "/lab/bench/unlimited"
cache = "bypass"
`;
// Insert the bench rules before the shipped ones (first match wins).
const base = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8').replace('main = "build/index.js"', 'main = "../../build/index.js"').replace(/\[build\]\n(?:#.*\n)*command = .*\n/, '');
const at = base.indexOf('[[vars.EDGELAYER.rules]]');
writeFileSync(join(ROOT, 'target/bench/ratelimit.wrangler.toml'), base.slice(0, at) + extra + '\n' + base.slice(at));

const origin = await startOrigin();
const edge = await startWrangler('target/bench/ratelimit.wrangler.toml', origin.url, '/__edgelayer/health');
const q = '?body=ok&header=Cache-Control:no-store';
const check = await fetch(edge.url + '/lab/bench/limited' + q);
await check.arrayBuffer();
// Spend the boxed policy's one request: every later one is refused.
for (let i = 0; i < 2; i++) await (await fetch(edge.url + '/lab/bench/refused' + q)).arrayBuffer();
const rows = compare(
  [
    { name: 'limited (DO check)', url: edge.url + '/lab/bench/limited' + q },
    { name: 'unlimited', url: edge.url + '/lab/bench/unlimited' + q },
    { name: 'refused (boxed key, isolate memory)', url: edge.url + '/lab/bench/refused' + q },
  ],
  { rounds: Number(process.env.ROUNDS ?? 3), seconds: Number(process.env.SECONDS ?? 5) },
);
console.log(`\nwrk -t1 -c16 through wrangler dev, medians of interleaved runs; limited carries ${check.headers.get('ratelimit-policy')}\n`);
console.log(table(rows, { 'limited (DO check)': 'unlimited', 'refused (boxed key, isolate memory)': 'limited (DO check)' }));
const [l, u, r] = rows;
console.log(`\nadded latency: p50 +${(l.p50 - u.p50).toFixed(2)} ms, p99 +${(l.p99 - u.p99).toFixed(2)} ms`);
console.log(`refused from memory against admitted after a DO check: p50 ${r.p50.toFixed(2)} ms vs ${l.p50.toFixed(2)} ms (${(r.p50 / l.p50).toFixed(2)}x)`);
process.exit(0);
