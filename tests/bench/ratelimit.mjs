// Rate-limit benchmark (issue 6): added latency of a limited request (one Durable Object
// round trip) versus an unlimited one, same route and origin answer, through `wrangler dev`.
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
const rows = compare(
  [
    { name: 'limited (DO check)', url: edge.url + '/lab/bench/limited' + q },
    { name: 'unlimited', url: edge.url + '/lab/bench/unlimited' + q },
  ],
  { rounds: Number(process.env.ROUNDS ?? 3), seconds: Number(process.env.SECONDS ?? 5) },
);
console.log(`\nwrk -t1 -c16 through wrangler dev, medians of interleaved runs; limited carries ${check.headers.get('ratelimit-policy')}\n`);
console.log(table(rows, { 'limited (DO check)': 'unlimited' }));
const [l, u] = rows;
console.log(`\nadded latency: p50 +${(l.p50 - u.p50).toFixed(2)} ms, p99 +${(l.p99 - u.p99).toFixed(2)} ms`);
process.exit(0);
