// Shared benchmark plumbing: start the release origin and `wrangler dev` workers, run wrk, and
// summarise. Loads go to 127.0.0.1 only, for a bounded time.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, freePort } from '../e2e/harness.mjs';

export { ROOT, freePort };
const children = [];
process.on('exit', () => children.forEach((c) => c.kill('SIGTERM')));
process.on('SIGINT', () => process.exit(130));

async function waitFor(url, ms = 120000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (r.status < 500) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not come up`);
}

export async function startOrigin(extra = []) {
  const port = await freePort();
  const data = join(mkdtempSync(join(tmpdir(), 'edgelayer-bench-')), 'tasks.sqlite3');
  const p = spawn(join(ROOT, 'target/release/origin'), ['--addr', `127.0.0.1:${port}`, '--data', data, '--lab', ...extra], { stdio: 'ignore', env: { ...process.env, RUST_LOG: 'warn' } });
  children.push(p);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/healthz`);
  return { url, proc: p };
}

/** `wrangler dev` for a config; returns its URL once it answers. */
export async function startWrangler(config, originUrl, readyPath = '/', extraArgs = []) {
  const port = await freePort();
  const args = ['wrangler', 'dev', '--config', config, '--ip', '127.0.0.1', '--port', String(port), '--var', `ORIGIN_URL:${originUrl}`, '--log-level', 'error', ...extraArgs];
  const p = spawn('npx', args, { cwd: ROOT, stdio: 'ignore', env: { ...process.env, WRANGLER_SEND_METRICS: 'false' }, detached: true });
  const kill = (s = 'SIGTERM') => { try { process.kill(-p.pid, s); } catch {} };
  children.push({ kill });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(url + readyPath);
  return { url, stop: () => kill() };
}

/** wrk from Debian: installed when missing and this is root with apt, else a clear message. */
export function ensureWrk() {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return;
  } catch (e) {
    // wrk --version exits 1 even when present.
    if (e.code !== 'ENOENT') return;
  }
  if (process.getuid?.() !== 0) throw new Error('wrk is not installed: apt-get install wrk');
  // A new machine has no package lists yet.
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', 'wrk'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

/** One wrk run: requests/s and latency percentiles (ms). */
export function wrk(url, { seconds = 5, connections = 16, threads = 1 } = {}) {
  ensureWrk();
  const out = execFileSync('wrk', ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '--latency', url], { encoding: 'utf8' });
  const ms = (v) => {
    const m = /([\d.]+)(us|ms|s)/.exec(v);
    return m ? Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2]] : NaN;
  };
  const pct = (p) => ms(new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(out)?.[1] ?? '');
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? '0';
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]), p50: pct(50), p99: pct(99), errors: Number(errors) };
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Runs every scenario `rounds` times, interleaved, and reports medians. */
export function compare(scenarios, { rounds = 3, seconds = 5 } = {}) {
  const runs = Object.fromEntries(scenarios.map((s) => [s.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const s of scenarios) runs[s.name].push(wrk(s.url, { seconds }));
  }
  return scenarios.map((s) => {
    const xs = runs[s.name];
    return { name: s.name, rps: median(xs.map((x) => x.rps)), p50: median(xs.map((x) => x.p50)), p99: median(xs.map((x) => x.p99)), errors: xs.reduce((a, x) => a + x.errors, 0) };
  });
}

export function table(rows, baseline) {
  const base = Object.fromEntries(rows.map((r) => [r.name, r]));
  const lines = ['| scenario | req/s | p50 ms | p99 ms | non-2xx | req/s vs baseline |', '|---|---:|---:|---:|---:|---:|'];
  for (const r of rows) {
    const b = baseline[r.name] && base[baseline[r.name]];
    lines.push(`| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.errors} | ${b ? (r.rps / b.rps).toFixed(2) + '×' : ''} |`);
  }
  return lines.join('\n');
}
