// Cold start (issue 15): how long a new isolate takes to answer its first request, for the
// edge as shipped (build/: without the image codecs, the image worker beside it behind its
// Service Binding), the same crate built all in one with the codecs (target/worker-all-in-one:
// `EDGELAYER_BUILD_DIR=target/worker-all-in-one bash .ci/build-worker`) and a one-line JS
// worker, each started 7 times in a new workerd (Miniflare, what `wrangler dev` runs).
// Printed: the wasm size, the time until workerd reports ready (the script loaded and its
// wasm compiled) and the first request after that (`/__edgelayer/health`, answered by the
// edge itself; for the JS worker, its one response), medians and ranges.
import { Miniflare } from 'miniflare';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startEdge } from '../e2e/harness.mjs';

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

const variants = [
  ['edge as shipped (build/, codecs in the image worker)', join(ROOT, 'build/index.js'), undefined],
  ['all in one, codecs included (target/worker-all-in-one)', join(ROOT, 'target/worker-all-in-one/index.js'), join(ROOT, 'target/worker-all-in-one/index.js')],
];
console.log('| worker | wasm raw | gzip | startup to ready ms (median, range) | first request ms (median, range) | status |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const [name, script, scriptPath] of variants) {
  if (!existsSync(script)) {
    console.log(`| ${name} | (not built: ${script}) | | | | |`);
    continue;
  }
  const wasm = join(script, '..', 'index_bg.wasm');
  const raw = statSync(wasm).size;
  const gz = execFileSync('gzip', ['-9', '-c', wasm], { maxBuffer: 1 << 28 }).length; // as .ci/build-worker counts
  const r = await measure(() => startEdge({ scriptPath, log: [] }), '/__edgelayer/health');
  console.log(`| ${name} | ${(raw / 2 ** 20).toFixed(2)} MiB | ${(gz / 2 ** 20).toFixed(2)} MiB | ${median(r.ready).toFixed(0)} (${range(r.ready)}) | ${median(r.first).toFixed(1)} (${range(r.first)}) | ${r.status} |`);
}
const r = await measure(async () => {
  const mf = new Miniflare({ modules: true, script: "export default { fetch() { return new Response('ok'); } };", host: '127.0.0.1', port: 0 });
  const url = (await mf.ready).toString().replace(/\/$/, '');
  return { url, dispose: () => mf.dispose() };
}, '/');
console.log(`| one-line JS worker | – | – | ${median(r.ready).toFixed(0)} (${range(r.ready)}) | ${median(r.first).toFixed(1)} (${range(r.first)}) | ${r.status} |`);
