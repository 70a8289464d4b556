// Cache benchmark: requests/s and p50/p99 for cache hits and misses through `wrangler dev`,
// next to the same load on two JS workers in one run: a 5-line passthrough (the miss
// baseline) and one that serves from `caches.default` (the hit baseline).
// Run: npm run bench:cache. `BEFORE_BUILD=<dir with index.js>` adds another build of the
// worker (e.g. an older commit's `build/`) to the same run, for before/after figures.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startOrigin, startWrangler, compare, table, ensureWrk } from './lib.mjs';

ensureWrk();

// The shipped config, and the same worker with L1 off to show what the in-isolate tier buys
// (written next to the build output so relative paths hold; the build, done once by the npm
// script, is shared: without [build], wrangler dev does not rebuild).
mkdirSync(join(ROOT, 'target/bench'), { recursive: true });
const shipped = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8')
  .replace('main = "build/index.js"', 'main = "../../build/index.js"')
  .replace(/\[build\]\n(?:#.*\n)*command = .*\n/, '');
writeFileSync(join(ROOT, 'target/bench/edge.wrangler.toml'), shipped);
writeFileSync(join(ROOT, 'target/bench/no-l1.wrangler.toml'), shipped.replace('max_bytes = 8388608', 'max_bytes = 0'));
const before = process.env.BEFORE_BUILD;
if (before) writeFileSync(join(ROOT, 'target/bench/before.wrangler.toml'), shipped.replace('main = "../../build/index.js"', `main = "${join(before, 'index.js')}"`));

const origin = await startOrigin();
const edge = await startWrangler('target/bench/edge.wrangler.toml', origin.url, '/__edgelayer/health');
const edgeNoL1 = await startWrangler('target/bench/no-l1.wrangler.toml', origin.url, '/__edgelayer/health');
const base = await startWrangler('tests/bench/passthrough/wrangler.toml', origin.url, '/healthz');
const jsCache = await startWrangler('tests/bench/cache-api/wrangler.toml', origin.url, '/healthz');
const ceiling = await startWrangler('tests/bench/static/wrangler.toml', origin.url, '/');
const old = before ? await startWrangler('target/bench/before.wrangler.toml', origin.url, '/__edgelayer/health') : null;

const page = await (await fetch(edge.url + '/')).text();
const css = /href="(\/static\/app\.[0-9a-f]{8}\.css)"/.exec(page)[1];
const miss = '/lab/bench-miss?header=Cache-Control:no-store&body=' + 'x'.repeat(2000);
for (const e of [edge, edgeNoL1, jsCache, ...(old ? [old] : [])]) for (let i = 0; i < 3; i++) await (await fetch(e.url + css)).arrayBuffer();
const check = await fetch(edge.url + css);
await check.arrayBuffer();
const checkNoL1 = await fetch(edgeNoL1.url + css);
await checkNoL1.arrayBuffer();

const jsCheck = await fetch(jsCache.url + css);
await jsCheck.arrayBuffer();
const scenarios = [
  { name: 'edgelayer hit (L1)', url: edge.url + css },
  { name: 'edgelayer hit (Cache API, L1 off)', url: edgeNoL1.url + css },
  { name: 'JS Cache API worker hit', url: jsCache.url + css },
  { name: 'JS static answer (no I/O: the ceiling)', url: ceiling.url + '/' },
  { name: 'passthrough (same URL)', url: base.url + css },
  { name: 'edgelayer miss (no-store)', url: edge.url + miss },
  { name: 'passthrough miss URL', url: base.url + miss },
  ...(old ? [{ name: 'before: hit (L1)', url: old.url + css }, { name: 'before: miss (no-store)', url: old.url + miss }] : []),
  { name: 'origin direct', url: origin.url + css },
];
const rows = compare(scenarios, { rounds: Number(process.env.ROUNDS ?? 3), seconds: Number(process.env.SECONDS ?? 5) });
console.log(`\nwrk -t1 -c16, medians of ${process.env.ROUNDS ?? 3} interleaved ${process.env.SECONDS ?? 5}s runs, 127.0.0.1\n`);
console.log(table(rows, {
  'edgelayer hit (L1)': 'JS Cache API worker hit',
  'edgelayer hit (Cache API, L1 off)': 'JS Cache API worker hit',
  'JS static answer (no I/O: the ceiling)': 'JS Cache API worker hit',
  'edgelayer miss (no-store)': 'passthrough miss URL',
  'before: hit (L1)': 'JS Cache API worker hit',
  'before: miss (no-store)': 'passthrough miss URL',
}));
console.log(`\nhit checks: L1 "${check.headers.get('cache-status')}", L1 off "${checkNoL1.headers.get('cache-status')}", JS worker "${jsCheck.headers.get('cf-cache-status') ?? jsCheck.status}"`);
console.log('Ratios: hits against the JS Cache API worker, misses against the JS passthrough, each measured side by side in this run.');
console.log('Worker CPU per request is not reported by wrangler dev (workerd local mode), so it is not measured here.');
process.exit(0);
