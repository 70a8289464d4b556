// Image timings inside the worker (workerd under Miniflare, the runtime `wrangler dev` uses):
// `npm run bench:images` runs it after the native benchmark. The origin serves the benchmark
// corpus (tests/bench/image-corpus.sh) plus the site's images; each request has a fresh query,
// so every one is a miss that fetches, decodes, resizes and encodes. Printed per image and
// format: output bytes and the median of 3 request times (client side, 127.0.0.1; the source
// fetch from the local origin is included and takes a few ms).
//
// Then issue 15's side-by-side run: the Pillow peer (tests/bench/pillow_peer.py, from the bench's
// venv: EDGELAYER_PILLOW_PY) behind the same origin, the same URLs and `Accept`s, each a miss,
// timed the same way. Both servers' outputs and a manifest go to target/image-outputs for
// `cargo bench --bench images -- --score` (SSIM against one reference, bytes side by side).
// Last, the 12 MP case in a fresh isolate: time and the wasm memory it grew to.
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, freePort, startEdge } from '../e2e/harness.mjs';

const corpus = join(ROOT, 'target/corpus/images');
const site = mkdtempSync(join(tmpdir(), 'edgelayer-img-bench-'));
const sourceOf = {}; // file name -> where it came from (the scoring step reads the source)
for (const f of ['coffee.jpg', 'chelsea.jpg', 'badge.png']) sourceOf[f] = join(ROOT, 'assets/site/img', f);
for (const f of readdirSync(corpus).filter((f) => /\.(jpg|png|gif)$/.test(f) && (!/mp\.jpg$/.test(f) || f === 'twelve-mp.jpg'))) sourceOf[f] = join(corpus, f);
for (const [f, from] of Object.entries(sourceOf)) cpSync(from, join(site, f));
const stills = () => readdirSync(site).filter((f) => /\.(jpg|png)$/.test(f) && !/mp\.jpg$/.test(f)).sort();

const port = await freePort();
const origin = spawn(join(ROOT, 'target/release/origin'), ['--addr', `127.0.0.1:${port}`, '--assets', site, '--data', join(site, 'db.sqlite3')], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));
const edge = await startEdge({ originUrl: `http://127.0.0.1:${port}`, log: [] });

const CHROME = 'image/avif,image/webp,image/apng,image/*,*/*;q=0.8';
let n = 0;
async function timed(path, accept, base = edge.url) {
  const times = [];
  let res, body;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    res = await fetch(`${base}${path}?v=${n++}`, { headers: { accept } });
    body = new Uint8Array(await res.arrayBuffer());
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { ms: times[1], size: body.byteLength, body, type: res.headers.get('content-type'), status: res.status, info: res.headers.get('x-edgelayer-image') };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

/** The Pillow peer on a free port, once it answers; `null` (and why) when Pillow is missing. */
async function startPeer() {
  const python = process.env.EDGELAYER_PILLOW_PY;
  if (!python) return null;
  const peerPort = await freePort();
  const proc = spawn(python, [join(ROOT, 'tests/bench/pillow_peer.py'), String(peerPort), `http://127.0.0.1:${port}`], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${peerPort}`;
  for (let i = 0; i < 100; i++) {
    try {
      await (await fetch(`${url}/`)).arrayBuffer();
      return { url, proc };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  proc.kill();
  return null;
}

/** Issue 15's table: the same misses on both servers, bytes and time; outputs kept for scoring. */
async function sideBySide() {
  const peer = await startPeer();
  if (!peer) {
    console.log('\n(no Pillow peer: set EDGELAYER_PILLOW_PY to a python with Pillow; `npm run bench:images` does)');
    return;
  }
  const out = join(ROOT, 'target/image-outputs');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const manifest = [];
  const ext = (type) => (type ?? '').replace(/^image\//, '').replace('jpeg', 'jpg');
  console.log('\n## Side by side with the Pillow peer (every request a miss; ms: client-side, median of 3)\n');
  console.log('| image | options | Accept | edge served | bytes | ms | Pillow served | bytes | ms | bytes ratio | time ratio |');
  console.log('|---|---|---|---|---:|---:|---|---:|---:|---:|---:|');
  const byAccept = {};
  // Safari 14-15's `Accept` (WebP, no AVIF): the lossy WebP encoders side by side.
  for (const [acceptName, accept] of [['Chrome', CHROME], ['WebP', 'image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5'], ['*/*', '*/*']]) {
    for (const opts of ['width=384,format=auto', 'width=1200,format=auto']) {
      for (const f of stills()) {
        const path = `/cdn-cgi/image/${opts}/${f}`;
        const e = await timed(path, accept);
        const p = await timed(path, accept, peer.url);
        if (e.status !== 200 || p.status !== 200) {
          console.log(`| ${f} | ${opts} | ${acceptName} | HTTP ${e.status} | | | HTTP ${p.status} | | | | |`);
          continue;
        }
        const tag = `${f}__${opts.replace(/[=,]/g, '-')}__${acceptName === '*/*' ? 'any' : acceptName}`;
        const eFile = `edge__${tag}.${ext(e.type)}`;
        const pFile = `pillow__${tag}.${ext(p.type)}`;
        writeFileSync(join(out, eFile), e.body);
        writeFileSync(join(out, pFile), p.body);
        manifest.push({ source: sourceOf[f], options: opts, accept: acceptName, edge: { file: eFile, bytes: e.size, ms: e.ms, type: e.type }, pillow: { file: pFile, bytes: p.size, ms: p.ms, type: p.type } });
        const k = `${opts} ${acceptName}`;
        (byAccept[k] ??= []).push({ e, p });
        console.log(`| ${f} | ${opts} | ${acceptName} | ${e.type} | ${e.size} | ${e.ms.toFixed(0)} | ${p.type} | ${p.size} | ${p.ms.toFixed(0)} | ${(e.size / p.size).toFixed(2)} | ${(e.ms / p.ms).toFixed(2)} |`);
      }
    }
  }
  console.log('\n| options, Accept | edge bytes | Pillow bytes | ratio | edge ms median | p90 | Pillow ms median | p90 | median ratio |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  const all = { e: [], p: [] };
  for (const [k, rows] of Object.entries(byAccept)) {
    const eb = rows.reduce((a, r) => a + r.e.size, 0);
    const pb = rows.reduce((a, r) => a + r.p.size, 0);
    const em = rows.map((r) => r.e.ms);
    const pm = rows.map((r) => r.p.ms);
    all.e.push(...em);
    all.p.push(...pm);
    console.log(`| ${k} | ${eb} | ${pb} | ${(eb / pb).toFixed(3)} | ${median(em).toFixed(0)} | ${pct(em, 0.9).toFixed(0)} | ${median(pm).toFixed(0)} | ${pct(pm, 0.9).toFixed(0)} | ${(median(em) / median(pm)).toFixed(2)} |`);
  }
  console.log(`| **every request** | | | | ${median(all.e).toFixed(0)} | ${pct(all.e, 0.9).toFixed(0)} | ${median(all.p).toFixed(0)} | ${pct(all.p, 0.9).toFixed(0)} | **${(median(all.e) / median(all.p)).toFixed(2)}** |`);
  writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 1));
  console.log(`\n(outputs and manifest in target/image-outputs; SSIM: cargo bench --bench images -- --score)`);

  // The 12 MP case, each server fresh: a new isolate, so the wasm memory it reports is this
  // request's peak (wasm memory only grows).
  if (!sourceOf['twelve-mp.jpg']) {
    console.log('\n(no target/corpus/images/twelve-mp.jpg: run tests/bench/image-corpus.sh)');
    peer.proc.kill();
    return;
  }
  console.log('\n## 12 MP JPEG (4000×3000) → width=1200,format=auto, Chrome Accept, each in a fresh isolate\n');
  console.log('| run | edge served | bytes | edge ms | wasm memory after (MiB) | Pillow served | bytes | Pillow ms |');
  console.log('|---:|---|---:|---:|---:|---|---:|---:|');
  for (let i = 0; i < 3; i++) {
    const fresh = await startEdge({ originUrl: `http://127.0.0.1:${port}`, log: [] });
    try {
      const e = await timed('/cdn-cgi/image/width=1200,format=auto/twelve-mp.jpg', CHROME, fresh.url);
      const p = await timed('/cdn-cgi/image/width=1200,format=auto/twelve-mp.jpg', CHROME, peer.url);
      const mem = /mem_mib=(\d+)/.exec(e.info ?? '')?.[1] ?? 'n/a';
      console.log(`| ${i + 1} | ${e.status === 200 ? e.type : `HTTP ${e.status}`} | ${e.size} | ${e.ms.toFixed(0)} | ${mem} | ${p.type} | ${p.size} | ${p.ms.toFixed(0)} |`);
    } finally {
      await fresh.dispose();
    }
  }
  peer.proc.kill();
}


/** Per image and format, the edge alone. */
async function perFormat() {
  console.log('| image | options | served | bytes | worker request ms (median of 3) |');
  console.log('|---|---|---|---:|---:|');
  for (const f of stills()) {
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
}

try {
  // EDGELAYER_IMAGES_SIDE_ONLY=1: only the side-by-side run.
  if (!process.env.EDGELAYER_IMAGES_SIDE_ONLY) await perFormat();
  await sideBySide();
} finally {
  await edge.dispose();
  origin.kill();
  rmSync(site, { recursive: true, force: true });
}
