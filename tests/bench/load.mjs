// Load test (issue 7): a mixed workload through `wrangler dev` in front of two origin processes,
// first with both up, then with one killed halfway. Reads (HTML, static, API GETs, images) and
// writes (POST /api/tasks) run at once as two wrk processes; each run is bounded in time and
// aimed at 127.0.0.1 only. Prints throughput, p50/p95/p99, hit ratio and errors per run, next to
// the edge's own view from /__edgelayer/metrics.json.
// Run: npm run bench:load   (SECONDS=30 READ_CONNECTIONS=12 WRITE_CONNECTIONS=2 to change)
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, ensureWrk, startOrigin, startWrangler } from './lib.mjs';

const SECONDS = Number(process.env.SECONDS ?? 30);
const READS = Number(process.env.READ_CONNECTIONS ?? 12);
const WRITES = Number(process.env.WRITE_CONNECTIONS ?? 2);
const TOKEN = 'bench-admin-token';
ensureWrk();

// The shipped config with the rate limits raised so the limiter admits the load (its own cost
// is measured by bench:ratelimit), written next to a .dev.vars holding the admin token.
const dir = join(ROOT, 'target/bench');
mkdirSync(dir, { recursive: true });
const config = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8')
  .replace('main = "build/index.js"', 'main = "../../build/index.js"')
  .replace(/\[build\]\n(?:#.*\n)*command = .*\n/, '')
  .replace(/^limit = \d+$/gm, 'limit = 1000000')
  .replace(/^warm = \[.*\]$/m, 'warm = []');
writeFileSync(join(dir, 'load.wrangler.toml'), config);
writeFileSync(join(dir, '.dev.vars'), `ADMIN_TOKEN=${TOKEN}\n`);

function wrk(script, url, connections, seconds) {
  return new Promise((resolve, reject) => {
    const args = ['-t', String(Math.min(2, connections)), '-c', String(connections), '-d', `${seconds}s`, '--timeout', '10s', '-s', join(ROOT, 'tests/bench/load', script), url];
    const p = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('exit', () => out.split('\n').filter((l) => l.startsWith('first write error')).forEach((l) => console.log(l)));
    p.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || !line) return reject(new Error(`wrk ${script} exited ${code}:\n${out}`));
      resolve(JSON.parse(line.slice(7)));
    });
  });
}

/** A dashboard screenshot (Debian's Chromium, headless), for the README. */
function screenshot(url, file) {
  const u = new URL(`${url}/__edgelayer/dashboard`);
  u.username = 'admin';
  u.password = TOKEN;
  execFileSync('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--window-size=1400,1100', '--virtual-time-budget=5000', `--screenshot=${file}`, u.toString()], { stdio: 'ignore' });
}

async function edgeView(url) {
  const res = await fetch(`${url}/__edgelayer/metrics.json`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return res.json();
}

/** One run: reads and writes at once; `killAt` (s) kills the second origin mid-run. */
async function run(name, killAt) {
  const a = await startOrigin();
  const b = await startOrigin();
  // A fresh local state per run: the metrics and pool objects start empty.
  const state = mkdtempSync(join(tmpdir(), 'edgelayer-load-'));
  const edge = await startWrangler('target/bench/load.wrangler.toml', `${a.url}, ${b.url}`, '/__edgelayer/health', ['--persist-to', state]);
  // Warm-up: one pass over the URLs so the run measures steady state, not first encodes.
  await wrk('reads.lua', edge.url, 2, 3);
  let killed = null;
  const timer = killAt != null ? setTimeout(() => { b.proc.kill('SIGKILL'); killed = Date.now(); }, killAt * 1000) : null;
  const started = Date.now();
  const [reads, writes] = await Promise.all([wrk('reads.lua', edge.url, READS, SECONDS), wrk('writes.lua', edge.url, WRITES, SECONDS)]);
  clearTimeout(timer);
  const after = await edgeView(edge.url);
  const prom = await (await fetch(`${edge.url}/__edgelayer/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
  const attempts = [...prom.matchAll(/^edge_origin_requests_total\{origin="http:\/\/127\.0\.0\.1:(\d+)",status="([^"]+)"\} (\d+)$/gm)].map((m) => `${m[1]} ${m[2]}: ${m[3]}`).join(', ');
  if (process.env.SCREENSHOT) screenshot(edge.url, process.env.SCREENSHOT);
  const pool = after.pool.map((o) => `${o.url.split(':').pop()} ${o.state} (opened ${o.opened}×)`).join(', ');
  a.proc.kill('SIGTERM');
  b.proc.kill('SIGTERM');
  edge.stop();
  return { name, reads, writes, killedAfter: killed && (killed - started) / 1000, pool, attempts, edge: after.alerts };
}

const sum = (o) => Object.values(o).reduce((x, y) => x + y, 0);
const bad = (status) => Object.entries(status).filter(([s]) => Number(s) >= 500).reduce((n, [, v]) => n + v, 0);
function hitRatio(cache) {
  const served = (cache.HIT ?? 0) + (cache.STALE ?? 0) + (cache.UPDATING ?? 0) + (cache.REVALIDATED ?? 0);
  const lookups = served + (cache.MISS ?? 0) + (cache.EXPIRED ?? 0);
  return lookups ? served / lookups : NaN;
}

const runs = [await run('both origins up'), await run('one origin killed halfway', SECONDS / 2)];

console.log(`\nMixed workload through wrangler dev, two origins (weights 1:1), ${SECONDS} s per run, 127.0.0.1.`);
console.log(`Reads: wrk -c${READS} over HTML 35 %, static 25 %, API GET 25 %, images 15 % (Accept: AVIF/WebP). Writes: wrk -c${WRITES} POST /api/tasks.\n`);
console.log('| run | total req/s | reads req/s | reads p50 / p95 / p99 ms | reads 5xx | writes req/s | writes p50 / p99 ms | writes 5xx | socket errors | hit ratio (client) |');
console.log('|---|---:|---:|---|---:|---:|---|---:|---:|---:|');
for (const r of runs) {
  const total = (r.reads.requests + r.writes.requests) / r.reads.seconds;
  console.log(
    `| ${r.name} | ${total.toFixed(0)} | ${(r.reads.requests / r.reads.seconds).toFixed(0)} | ${r.reads.p50.toFixed(1)} / ${r.reads.p95.toFixed(1)} / ${r.reads.p99.toFixed(1)} | ${bad(r.reads.status)} | ` +
      `${(r.writes.requests / r.writes.seconds).toFixed(0)} | ${r.writes.p50.toFixed(1)} / ${r.writes.p99.toFixed(1)} | ${bad(r.writes.status)} | ${r.reads.socket_errors + r.writes.socket_errors} | ${(hitRatio(r.reads.cache) * 100).toFixed(1)} % |`,
  );
}
console.log('');
for (const r of runs) {
  const alerts = r.edge.map((a) => `${a.name} ${a.value == null ? '–' : a.value.toFixed(3)}${a.firing ? ' FIRING' : ''}`).join(', ');
  console.log(`${r.name}: statuses reads ${JSON.stringify(r.reads.status)}, writes ${JSON.stringify(r.writes.status)}; X-Cache ${JSON.stringify(r.reads.cache)}`);
  console.log(`  edge view (last 5 min): ${alerts}; pool after: ${r.pool}${r.killedAfter ? `; origin killed at ${r.killedAfter.toFixed(1)} s` : ''}`);
  console.log(`  origin attempts (port status: count, warm-up included): ${r.attempts}`);
}
process.exit(0);
