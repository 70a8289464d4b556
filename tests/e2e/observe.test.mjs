// Observability end to end: Server-Timing and X-Request-Id on every response, the metrics
// aggregate behind the authenticated admin endpoints (Prometheus text and JSON), names that
// match the origin's /metrics, cron health checks and cache warming.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { get, createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { startOrigin, startEdge, wranglerConfig, freePort, ADMIN_TOKEN, ROOT } from './harness.mjs';

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

test('one JSON log line per request, joined to the origin by the W3C trace id', async () => {
  const edgeLog = [];
  const originLog = [];
  const o = await startOrigin({ log: originLog });
  const cfg = wranglerConfig().vars.EDGELAYER;
  const rules = [{ name: 'logq', path: '/lab/logq*', cache: 'bypass', log_query: true }, ...cfg.rules];
  const e = await startEdge({ originUrl: o.url, vars: { EDGELAYER: { ...cfg, rules } }, log: edgeLog });
  try {
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await fetch(`${e.url}/lab/logged?token=secret`, { headers: { traceparent: `00-${trace}-00f067aa0ba902b7-01`, 'x-request-id': 'log-test-1', 'cf-connecting-ip': '198.51.100.9' } });
    const echoed = await res.json();
    const sent = echoed.headers.traceparent;
    assert.match(sent, new RegExp(`^00-${trace}-[0-9a-f]{16}-01$`), 'the trace goes on to the origin');
    assert.notEqual(sent.split('-')[2], '00f067aa0ba902b7', "with the edge's own span as parent");
    await fetch(`${e.url}/lab/logq?page=2`).then((r) => r.arrayBuffer());
    await fetch(`${e.url}/lab/fresh`).then((r) => r.arrayBuffer());
    await new Promise((r) => setTimeout(r, 300));
    const lines = edgeLog.filter((l) => l.trim().startsWith('{"ts"')).map((l) => JSON.parse(l.trim()));
    const line = lines.find((l) => l.request_id === 'log-test-1');
    assert.ok(line, `a line for the request in:\n${edgeLog.join('\n')}`);
    assert.equal(line.trace_id, trace);
    assert.equal(line.rule, 'lab');
    assert.equal(line.method, 'GET');
    assert.equal(line.path, '/lab/logged');
    assert.equal(line.query, undefined, 'no query values unless the rule allows');
    assert.equal(line.status, 200);
    assert.equal(line.limit, 'ok');
    assert.equal(line.origin, o.url);
    assert.ok(line.ms >= 0 && line.origin_ms >= 0, JSON.stringify(line));
    assert.equal(line.cache, "miss");
    assert.ok(!JSON.stringify(line).includes('secret') && !JSON.stringify(line).includes('198.51.100.9'), 'no query value, no client address');
    assert.equal(lines.find((l) => l.path === '/lab/logq').query, 'page=2', 'log_query = true');
    const fresh = lines.find((l) => l.path === '/lab/fresh');
    assert.match(fresh.trace_id, /^[0-9a-f]{32}$/, 'no traceparent: a new trace');
    assert.notEqual(fresh.trace_id, trace);
    const originLine = originLog.find((l) => l.includes('request_id="log-test-1"') || l.includes('request_id=log-test-1'));
    assert.ok(originLine, `the origin logged it:\n${originLog.join('\n')}`);
    assert.ok(originLine.includes(trace), 'with the same trace id');
  } finally {
    await e.dispose();
    await o.stop();
  }
});

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

test('the shipped Prometheus rules and Grafana dashboard name only metrics the edge and origin export', async () => {
  const rules = parseYaml(readFileSync(`${ROOT}/assets/observability/prometheus-rules.yml`, 'utf8'));
  const dashboard = JSON.parse(readFileSync(`${ROOT}/assets/observability/grafana-dashboard.json`, 'utf8'));
  const ruleExprs = rules.groups.flatMap((g) => g.rules.map((r) => {
    assert.ok(r.alert && r.expr && r.labels?.severity && r.annotations?.summary, JSON.stringify(r));
    return r.expr;
  }));
  const panelExprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
  assert.ok(ruleExprs.length >= 8 && panelExprs.length >= 12, `${ruleExprs.length} rules, ${panelExprs.length} panel queries`);
  // Every family either side exports (histograms as _bucket/_sum/_count).
  const edgeText = await (await fetch(`${edge.url}/__edgelayer/metrics`, { headers: auth })).text();
  const originText = await (await fetch(`${origin.url}/metrics`)).text();
  const exported = new Set();
  for (const m of `${edgeText}\n${originText}`.matchAll(/^# TYPE (\S+) (\w+)$/gm)) {
    exported.add(m[1]);
    if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(m[1] + s);
  }
  const named = new Set([...ruleExprs, ...panelExprs].flatMap((e) => [...e.matchAll(/\b((?:edge|origin)_[a-z0-9_]+)/g)].map((m) => m[1])));
  const missing = [...named].filter((n) => !exported.has(n));
  assert.deepEqual(missing, [], 'names in the rules or the dashboard that nothing exports');
  // Every exported family shows up somewhere (nothing is left undashboarded).
  const families = [...`${edgeText}\n${originText}`.matchAll(/^# TYPE (\S+) (\w+)$/gm)].map((m) => m[1]);
  const unused = families.filter((f) => ![...named].some((n) => n === f || n.startsWith(`${f}_`)));
  assert.deepEqual(unused, [], 'exported families neither the rules nor the dashboard use');
});

test('an alert that starts is posted to the webhook once, with its figures and the dashboard link', async () => {
  const received = [];
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ type: req.headers['content-type'], body: JSON.parse(body) });
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => hook.listen(0, '127.0.0.1', r));
  const o = await startOrigin();
  const cfg = wranglerConfig().vars.EDGELAYER;
  const dashboard = 'https://edge.example/__edgelayer/dashboard';
  const e = await startEdge({ originUrl: o.url, vars: { ALERT_WEBHOOK_URL: `http://127.0.0.1:${hook.address().port}/hook`, EDGELAYER: { ...cfg, metrics: { shards: 3, dashboard_url: dashboard }, pool: { ...cfg.pool, warm: [] } } } });
  try {
    // 24 requests, 6 of them 5xx: a 25 % error rate over at least 20 requests.
    for (let i = 0; i < 24; i++) await (await fetch(`${e.url}/lab/alerting-${i}?status=${i % 4 === 0 ? 503 : 200}`)).arrayBuffer();
    // Shipped by the admin read (this isolate's sums go first), then judged by the cron.
    const before = await (await fetch(`${e.url}/__edgelayer/metrics.json`, { headers: auth })).json();
    assert.equal(before.alerts.find((a) => a.name === 'error_rate').firing, true, JSON.stringify(before.alerts));
    const worker = await e.mf.getWorker();
    await worker.scheduled({ cron: '* * * * *' });
    assert.equal(received.length, 1, JSON.stringify(received));
    const msg = received[0].body;
    assert.equal(received[0].type, 'application/json');
    // Lab answers are never cached, so the hit ratio fires along with the error rate.
    assert.deepEqual(msg.alerts.map((a) => [a.name, a.state]), [['error_rate', 'firing'], ['hit_ratio', 'firing']]);
    assert.ok(msg.figures.requests >= 24 && msg.figures.errors >= 6, JSON.stringify(msg.figures));
    assert.equal(msg.dashboard, dashboard);
    assert.match(msg.text, /FIRING: error_rate is \d+\.\d % \(above 5\.0 %\)/);
    // Still firing on the next run: nothing new is sent.
    await worker.scheduled({ cron: '* * * * *' });
    assert.equal(received.length, 1, 'deduplicated');
  } finally {
    await e.dispose();
    await o.stop();
    hook.close();
  }
});
