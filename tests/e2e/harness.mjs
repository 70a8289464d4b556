// Shared e2e harness: the real origin binary on a free port, and the built worker under
// Miniflare with the bindings and vars read from wrangler.toml (one source of truth).
import { Miniflare } from 'miniflare';
import { parse } from 'smol-toml';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ORIGIN_BIN = process.env.ORIGIN_BIN ?? join(ROOT, 'target', 'debug', 'origin');

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(url, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
      last = new Error(`HTTP ${res.status}`);
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up: ${last}`);
}

/**
 * Starts the origin binary with `--lab` on a free port and a fresh database. `raw: true` also
 * starts the raw lab (hand-written HTTP/1.1 that can misbehave) on a port of its own: `rawUrl`.
 */
export async function startOrigin({ port, dataDir, lab = true, raw = false, log } = {}) {
  port ??= await freePort();
  const ownDir = !dataDir;
  dataDir ??= mkdtempSync(join(tmpdir(), 'edgelayer-e2e-'));
  const args = ['--addr', `127.0.0.1:${port}`, '--data', join(dataDir, 'tasks.sqlite3')];
  if (lab) args.push('--lab');
  const rawPort = raw ? await freePort() : undefined;
  if (raw) args.push('--lab-raw-addr', `127.0.0.1:${rawPort}`);
  // `log`: an array that collects the origin's stdout lines, with its access log switched on.
  const proc = spawn(ORIGIN_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: log ? 'warn,access=info' : 'warn' } });
  if (log) proc.stdout.on('data', (d) => log.push(...String(d).split('\n').filter(Boolean)));
  else proc.stdout.resume();
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(`${url}/healthz`);
  } catch (e) {
    proc.kill();
    throw new Error(`${e.message}\norigin stderr:\n${stderr}`);
  }
  return {
    url,
    port,
    rawUrl: raw ? `http://127.0.0.1:${rawPort}` : undefined,
    dataDir,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The wrangler.toml the worker ships with. */
export function wranglerConfig() {
  return parse(readFileSync(join(ROOT, 'wrangler.toml'), 'utf8'));
}

/** Starts the built worker (build/index.js) under Miniflare on a free port. */
/** The purge token the e2e workers are given (a secret in production). */
export const PURGE_TOKEN = 'e2e-purge-token';
/** The admin token (metrics, dashboard) the e2e workers are given. */
export const ADMIN_TOKEN = 'e2e-admin-token';

/**
 * Starts the built worker under Miniflare. `log`: an array that collects every line the runtime
 * prints (console output, uncaught errors, wasm panics).
 */
export async function startEdge({ originUrl, vars = {}, noDurableObjects = false, port, log, scriptPath } = {}) {
  const cfg = wranglerConfig();
  const collect = log
    ? {
        handleRuntimeStdio(stdout, stderr) {
          for (const stream of [stdout, stderr]) stream.on('data', (d) => log.push(...String(d).split('\n').filter(Boolean)));
        },
      }
    : {};
  // The image worker (build/images, `images/wrangler.toml`) behind the edge's `IMAGES`
  // Service Binding, as `npm start` and a deploy run them; not with a script of the caller's.
  const imageWorker = !scriptPath && existsSync(join(ROOT, 'build/images/index.js'));
  const code = { modules: true, modulesRoot: ROOT, modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }], compatibilityDate: cfg.compatibility_date };
  const edgeWorker = {
    name: cfg.name,
    ...code,
    scriptPath: scriptPath ?? join(ROOT, cfg.main),
    kvNamespaces: (cfg.kv_namespaces ?? []).map((k) => k.binding),
    durableObjects: noDurableObjects
      ? {}
      : Object.fromEntries((cfg.durable_objects?.bindings ?? []).map((b) => [b.name, { className: b.class_name, useSQLite: true }])),
    analyticsEngineDatasets: Object.fromEntries((cfg.analytics_engine_datasets ?? []).map((d) => [d.binding, { dataset: d.dataset }])),
    bindings: { ...cfg.vars, PURGE_TOKEN, ADMIN_TOKEN, ...(originUrl ? { ORIGIN_URL: originUrl } : {}), ...vars },
    serviceBindings: imageWorker ? Object.fromEntries((cfg.services ?? []).map((s) => [s.binding, s.service])) : {},
  };
  const workers = [edgeWorker];
  if (imageWorker) workers.push({ name: 'edgelayer-images', ...code, scriptPath: join(ROOT, 'build/images/index.js') });
  const mf = new Miniflare({
    ...collect,
    workers,
    host: '127.0.0.1',
    port: port ?? (await freePort()),
  });
  const url = (await mf.ready).toString().replace(/\/$/, '');
  return { url, mf, dispose: () => mf.dispose() };
}

/** Origin + edge together; `stop()` tears both down. */
export async function startStack(opts = {}) {
  const origin = await startOrigin(opts);
  const edge = await startEdge({ originUrl: origin.url, vars: opts.vars, log: opts.log });
  return {
    origin,
    edge,
    url: edge.url,
    async stop() {
      await edge.dispose();
      await origin.stop();
    },
  };
}

/** Debian's Chromium, when installed (the browser tests skip without it). */
export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

/**
 * Runs headless Chromium with `args` (e.g. `--dump-dom URL`) in a throwaway profile, with 5 s of
 * virtual time for scripts. Resolves with stdout (the DOM) and the console lines that matter.
 */
export function chromium(args) {
  const profile = mkdtempSync(join(tmpdir(), 'edgelayer-chromium-'));
  const all = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--enable-logging=stderr', '--v=0',
    '--virtual-time-budget=5000', ...args,
  ];
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM, all, { timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      rmSync(profile, { recursive: true, force: true });
      if (err && !stdout && !args.some((a) => a.startsWith('--screenshot'))) reject(err);
      else resolve({ dom: stdout, console: stderr.split('\n').filter((l) => l.includes('CONSOLE') || /Content Security Policy|Refused to/.test(l)) });
    });
  });
}
