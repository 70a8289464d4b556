// Image timings inside the worker (workerd under Miniflare, the runtime `wrangler dev` uses):
// `npm run bench:images` runs it after the native benchmark. The origin serves the benchmark
// corpus (tests/bench/image-corpus.sh) plus the site's images; each request has a fresh query,
// so every one is a miss that fetches, decodes, resizes and encodes. Printed per image and
// format: output bytes and the median of 3 request times (client side, 127.0.0.1; the source
// fetch from the local origin is included and takes a few ms).
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, freePort, startEdge } from '../e2e/harness.mjs';

const corpus = join(ROOT, 'target/corpus/images');
const site = mkdtempSync(join(tmpdir(), 'edgelayer-img-bench-'));
for (const f of ['coffee.jpg', 'chelsea.jpg', 'badge.png']) cpSync(join(ROOT, 'assets/site/img', f), join(site, f));
for (const f of readdirSync(corpus).filter((f) => /\.(jpg|png|gif)$/.test(f) && !/mp\.jpg$/.test(f))) cpSync(join(corpus, f), join(site, f));

const port = await freePort();
const origin = spawn(join(ROOT, 'target/release/origin'), ['--addr', `127.0.0.1:${port}`, '--assets', site, '--data', join(site, 'db.sqlite3')], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));
const edge = await startEdge({ originUrl: `http://127.0.0.1:${port}` });

const CHROME = 'image/avif,image/webp,image/apng,image/*,*/*;q=0.8';
let n = 0;
async function timed(path, accept) {
  const times = [];
  let res, size;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    res = await fetch(`${edge.url}${path}?v=${n++}`, { headers: { accept } });
    size = (await res.arrayBuffer()).byteLength;
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { ms: times[1], size, type: res.headers.get('content-type'), status: res.status, info: res.headers.get('x-edgelayer-image') };
}

try {
  console.log('| image | options | served | bytes | worker request ms (median of 3) |');
  console.log('|---|---|---|---:|---:|');
  for (const f of readdirSync(site).filter((f) => /\.(jpg|png)$/.test(f)).sort()) {
    for (const [opts, accept] of [['w=1200,f=jpeg', '*/*'], ['w=1200,f=avif', CHROME], ['w=1200,f=webp', CHROME], ['w=640', CHROME], ['w=640', '*/*']]) {
      const r = await timed(`/cdn-cgi/image/${opts}/${f}`, accept);
      const served = r.status === 200 ? (/original=/.test(r.info ?? '') ? `original (${r.type})` : r.type) : `HTTP ${r.status}`;
      console.log(`| ${f} | ${opts}${accept === CHROME ? ' (Chrome Accept)' : ''} | ${served} | ${r.size} | ${r.ms.toFixed(0)} |`);
    }
  }
  // Animations: resized frame by frame (src/image/animation.rs).
  for (const f of readdirSync(site).filter((f) => /\.gif$/.test(f)).sort()) {
    for (const opts of ['w=384', 'w=128']) {
      const r = await timed(`/cdn-cgi/image/${opts}/${f}`, '*/*');
      console.log(`| ${f} | ${opts} | ${r.status === 200 ? r.type : `HTTP ${r.status}`} | ${r.size} | ${r.ms.toFixed(0)} |`);
    }
  }
} finally {
  await edge.dispose();
  origin.kill();
  rmSync(site, { recursive: true, force: true });
}
