// Observability end to end: Server-Timing and X-Request-Id on every response, the metrics
// aggregate behind the authenticated admin endpoints (Prometheus text and JSON), names that
// match the origin's /metrics, cron health checks and cache warming.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { startOrigin, startEdge, wranglerConfig, freePort, ADMIN_TOKEN } from './harness.mjs';

let origin;
let edge;
before(async () => {
  origin = await startOrigin();
  const port = await freePort();
  const cfg = wranglerConfig().vars.EDGELAYER;
  // Warm a page under this edge's own host (the host is part of the cache key).
  const EDGELAYER = { ...cfg, pool: { ...cfg.pool, warm: [`http://127.0.0.1:${port}/about?from=cron`] } };
  edge = await startEdge({ originUrl: origin.url, vars: { EDGELAYER }, port });
});
after(async () => {
  await edge?.dispose();
  await origin?.stop();
});

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

test('Server-Timing names edge, cache, origin and transform; X-Request-Id is kept when sane', async () => {
  const miss = await fetch(`${edge.url}/?observe=timing`, { headers: { 'accept-encoding': 'br', 'x-request-id': 'client-id-42' } });
  await miss.arrayBuffer();
  const timing = miss.headers.get('server-timing');
  assert.match(timing, /^edge;dur=[\d.]+/);
  assert.match(timing, /cache;dur=[\d.]+/);
  assert.match(timing, /origin;dur=[\d.]+/);
  // fetch cannot ask for brotli alone (it adds its own Accept-Encoding), so minify may run alone.
  assert.match(timing, /transform;desc="minify(_brotli)?"/);
  assert.equal(miss.headers.get('x-request-id'), 'client-id-42');
  let hit;
  for (let i = 0; i < 5; i++) {
    hit = await fetch(`${edge.url}/?observe=timing`, { headers: { 'x-request-id': 'bad id <script>' } });
    await hit.arrayBuffer();
    if (hit.headers.get('x-cache') === 'HIT') break;
  }
  assert.equal(hit.headers.get('x-cache'), 'HIT');
  assert.doesNotMatch(hit.headers.get('server-timing'), /origin;/, 'a hit does not wait for the origin');
  assert.match(hit.headers.get('x-request-id'), /^[0-9a-f]{16}$/, 'an unsafe id is replaced');
  // Errors and limiter answers carry them too.
  const bad = await fetch(`${edge.url}/cdn-cgi/image/width=abc/img/chelsea.jpg`);
  assert.equal(bad.status, 400);
  assert.match(bad.headers.get('server-timing'), /^edge;dur=/);
  assert.ok(bad.headers.get('x-request-id'));
});

test('admin endpoints need the token; Prometheus text and JSON count what was served', async () => {
  for (let i = 0; i < 3; i++) await (await fetch(`${edge.url}/?observe=count`)).arrayBuffer();
  for (let i = 0; i < 12; i++) await (await fetch(`${edge.url}/admin/observe`)).arrayBuffer();
  const denied = await fetch(`${edge.url}/__edgelayer/metrics`);
  assert.equal(denied.status, 401);
  assert.match(denied.headers.get('www-authenticate'), /^Basic /);
  const wrong = await fetch(`${edge.url}/__edgelayer/metrics`, { headers: { authorization: 'Bearer nope' } });
  assert.equal(wrong.status, 401);

  const res = await fetch(`${edge.url}/__edgelayer/metrics`, { headers: auth });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0.0.4/);
  const text = await res.text();
  const sample = (re) => Number((text.match(re) ?? [])[1] ?? NaN);
  assert.ok(sample(/^edge_http_requests_total\{rule="html",cache="hit",status="200"\} (\d+)$/m) >= 2, text);
  assert.ok(sample(/^edge_http_requests_total\{rule="html",cache="miss",status="200"\} (\d+)$/m) >= 1, text);
  assert.ok(sample(/^edge_ratelimited_total\{rule="admin"\} (\d+)$/m) >= 2, 'strict tier: 10 a minute');
  assert.match(text, /^edge_http_request_duration_seconds_bucket\{rule="html",le="\+Inf"\} \d+$/m);
  assert.match(text, new RegExp(`^edge_origin_requests_total\\{origin="${origin.url.replace(/\./g, '\\.')}",status="200"\\} \\d+$`, 'm'));
  assert.ok(sample(/^edge_bytes_saved_total\{rule="html",stage="minify[a-z_]*"\} (\d+)$/m) > 0, 'minify saved bytes');

  // Basic auth (what a browser sends) works too.
  const basic = Buffer.from(`any:${ADMIN_TOKEN}`).toString('base64');
  const json = await (await fetch(`${edge.url}/__edgelayer/metrics.json`, { headers: { authorization: `Basic ${basic}` } })).json();
  assert.equal(json.series.length, 60);
  assert.ok(json.last_hour.requests >= 15, JSON.stringify(json.last_hour));
  assert.ok(json.last_hour.limited >= 2);
  assert.ok(json.series.some((p) => p.requests > 0 && p.rps > 0));
  assert.deepEqual(json.alerts.map((a) => a.name), ['p95_latency', 'error_rate', 'hit_ratio']);
  assert.deepEqual(json.thresholds, { p95_seconds: 2, error_rate: 0.05, hit_ratio: 0.7, window_minutes: 5, min_requests: 20 });
  assert.ok(json.rules.html.requests >= 5);
  assert.equal(json.pool[0].url, origin.url);
});

test('edge and origin metric names, units and buckets match', async () => {
  const edgeText = await (await fetch(`${edge.url}/__edgelayer/metrics`, { headers: auth })).text();
  const originText = await (await fetch(`${origin.url}/metrics`)).text();
  const families = (t, side) => new Set([...t.matchAll(new RegExp(`^# TYPE ${side}_(http_\\S+) (\\w+)$`, 'gm'))].map((m) => `${m[1]} ${m[2]}`));
  assert.deepEqual([...families(edgeText, 'edge')].sort(), [...families(originText, 'origin')].sort());
  const buckets = (t, name) => [...new Set([...t.matchAll(new RegExp(`^${name}_bucket\\{.*le="([^"]+)"\\}`, 'gm'))].map((m) => m[1]))];
  assert.deepEqual(buckets(edgeText, 'edge_http_request_duration_seconds'), buckets(originText, 'origin_http_request_duration_seconds'));
});

test('the cron trigger checks every origin and warms the configured URLs', async () => {
  const worker = await edge.mf.getWorker();
  await worker.scheduled({ cron: '* * * * *' });
  const json = await (await fetch(`${edge.url}/__edgelayer/metrics.json`, { headers: auth })).json();
  assert.equal(json.pool[0].last_check.ok, true, JSON.stringify(json.pool));
  assert.equal(json.pool[0].state, 'closed');
  // As a browser asks (brotli), which is the variant the warm-up stored.
  const cache = await new Promise((resolve, reject) => {
    get(`${edge.url}/about?from=cron`, { headers: { 'accept-encoding': 'br, gzip' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.headers['x-cache']));
    }).on('error', reject);
  });
  assert.equal(cache, 'HIT', 'the first client request finds it cached');
});
