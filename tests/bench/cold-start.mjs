// Cold start (issue 15): how long a new isolate takes to answer its first request, for the
// edge as shipped (build/: without the image codecs, the image worker beside it behind its
// Service Binding), the same crate built all in one with the codecs (target/worker-all-in-one:
// `EDGELAYER_BUILD_DIR=target/worker-all-in-one bash .ci/build-worker`) and a one-line JS
// worker, each started 7 times in a new workerd (Miniflare, what `wrangler dev` runs).
// Printed: the wasm size, the time until workerd reports ready (the script loaded and its
// wasm compiled) and the first request after that, medians and ranges, for two routes, each
// in its own new workerd: `/__edgelayer/health`, answered by the edge itself (for the JS
// worker, its one response), and a page through the origin (`/`: a cache miss, the origin's
// HTML minified and stored; for the JS worker, a one-line `fetch` to the origin).
import { Miniflare } from 'miniflare';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startEdge, startOrigin } from '../e2e/harness.mjs';

const RUNS = 7;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const range = (xs) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;

async function measure(start, path) {
  const ready = [];
  const first = [];
  let status;
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const w = await start();
    const t1 = performance.now();
    const res = await fetch(`${w.url}${path}`);
    await res.arrayBuffer();
    const t2 = performance.now();
    status = res.status;
    await w.dispose();
    ready.push(t1 - t0);
    first.push(t2 - t1);
  }
  return { ready, first, status };
}

const origin = await startOrigin();
const row = (name, raw, gz, health, page) =>
  console.log(`| ${name} | ${raw} | ${gz} | ${median(health.ready).toFixed(0)} (${range(health.ready)}) | ${median(health.first).toFixed(1)} (${range(health.first)}) | ${median(page.first).toFixed(1)} (${range(page.first)}) | ${health.status}, ${page.status} |`);

const variants = [
  ['edge as shipped (build/, codecs in the image worker)', join(ROOT, 'build/index.js'), undefined],
  ['all in one, codecs included (target/worker-all-in-one)', join(ROOT, 'target/worker-all-in-one/index.js'), join(ROOT, 'target/worker-all-in-one/index.js')],
];
console.log('| worker | wasm raw | gzip | startup to ready ms (median, range) | first request ms: health (median, range) | first request ms: a page, origin miss | status |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const [name, script, scriptPath] of variants) {
  if (!existsSync(script)) {
    console.log(`| ${name} | (not built: ${script}) | | | | | |`);
    continue;
  }
  const wasm = join(script, '..', 'index_bg.wasm');
  const raw = statSync(wasm).size;
  const gz = execFileSync('gzip', ['-9', '-c', wasm], { maxBuffer: 1 << 28 }).length; // as .ci/build-worker counts
  const start = () => startEdge({ scriptPath, originUrl: origin.url, log: [] });
  row(name, `${(raw / 2 ** 20).toFixed(2)} MiB`, `${(gz / 2 ** 20).toFixed(2)} MiB`, await measure(start, '/__edgelayer/health'), await measure(start, '/'));
}
const js = (script) => async () => {
  const mf = new Miniflare({ modules: true, script, bindings: { ORIGIN: origin.url }, host: '127.0.0.1', port: 0 });
  const url = (await mf.ready).toString().replace(/\/$/, '');
  return { url, dispose: () => mf.dispose() };
};
row('one-line JS worker', '–', '–', await measure(js("export default { fetch() { return new Response('ok'); } };"), '/'),
  await measure(js('export default { fetch(req, env) { const u = new URL(req.url); return fetch(env.ORIGIN + u.pathname + u.search, req); } };'), '/'));
await origin.stop();
