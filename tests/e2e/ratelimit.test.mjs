// Rate limits (real Durable Objects and KV under Miniflare) and security headers end to end.
// Every client here is 127.0.0.1, so each test uses its own policy (its own counters).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, startEdge, wranglerConfig } from './harness.mjs';

const cfg = wranglerConfig().vars.EDGELAYER;
const policies = {
  seq: { limit: 5, window: '1d' },
  conc: { limit: 50, window: '1d' },
  slide: { limit: 2, window: '2s' },
  tiered: { limit: 3, window: '1d' },
  gold: { limit: 20, window: '1d', key: ['header:x-api-key'] },
  logonly: { limit: 1, window: '1d', action: 'log' },
  listed: { limit: 1, window: '1d' },
  closed: { limit: 5, window: '1d', fail: 'closed' },
  open: { limit: 5, window: '1d' },
  stuffing: { limit: 5, window: '1m', count: 'failures', block_for: '1m', response: { status: 429, content_type: 'application/json', body: '{"error":"slow down"}' } },
  box: { limit: 5, window: '1s', block_for: '3s' },
  failonly: { limit: 2, window: '1d', count: ['401', '403'] },
  cookie: { limit: 1, window: '1d', key: ['cookie:sid'] },
  query: { limit: 1, window: '1d', key: ['query:user', 'path'] },
};
const testRules = Object.keys(policies).map((name) => ({ name: `rl-${name}`, path: `/lab/rl/${name}*`, cache: name === 'seq' ? 'respect_origin' : 'bypass', rate_limit: name }));
const vars = { EDGELAYER: { ...cfg, kv_cache_ttl: '0s', rate_limits: { ...cfg.rate_limits, ...policies }, rules: [...testRules, ...cfg.rules] } };

let stack;
before(async () => {
  stack = await startStack({ vars });
});
after(async () => {
  await stack?.stop();
});
const edge = (path, init) => fetch(stack.url + path, init);
const kv = () => stack.edge.mf.getKVNamespace('EDGE_KV');
const kvPut = async (k, v) => (await kv()).put(k, v);
const kvDelete = async (k) => (await kv()).delete(k);

test('sequential: exactly the limit, then 429 with Retry-After and both header styles', async () => {
  const statuses = [];
  let last;
  for (let i = 0; i < 8; i++) {
    last = await edge('/lab/rl/seq?header=Cache-Control:max-age=60');
    statuses.push(last.status);
    if (i === 0) {
      assert.equal(last.headers.get('x-ratelimit-limit'), '5');
      assert.equal(last.headers.get('x-ratelimit-remaining'), '4');
      assert.equal(last.headers.get('ratelimit-policy'), '"seq";q=5;w=86400');
      assert.match(last.headers.get('ratelimit'), /^"seq";r=4;t=\d+$/);
    }
    if (i === 1) assert.equal(last.headers.get('x-cache'), 'HIT', 'limit headers on cache hits too');
    if (i < 5) assert.ok(last.headers.has('ratelimit'));
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
  assert.ok(Number(last.headers.get('retry-after')) > 0);
  assert.equal(last.headers.get('x-ratelimit-remaining'), '0');
  const problem = await last.json();
  assert.equal(problem.status, 429);
  assert.match(last.headers.get('content-type'), /problem\+json/);
});

test('1,000 concurrent requests on one key: exactly the limit admitted', async () => {
  const results = await Promise.all(Array.from({ length: 1000 }, () => edge('/lab/rl/conc').then(async (r) => (await r.arrayBuffer(), r.status))));
  const admitted = results.filter((s) => s === 200).length;
  const limited = results.filter((s) => s === 429).length;
  assert.equal(admitted, 50, `admitted ${admitted}, 429s ${limited}, others ${1000 - admitted - limited}`);
  assert.equal(limited, 950);
});

test('the window slides: one more request per replenished interval', async () => {
  assert.equal((await edge('/lab/rl/slide')).status, 200);
  assert.equal((await edge('/lab/rl/slide')).status, 200);
  const denied = await edge('/lab/rl/slide');
  assert.equal(denied.status, 429);
  assert.equal(denied.headers.get('retry-after'), '1');
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal((await edge('/lab/rl/slide')).status, 200, 'after window/limit = 1 s');
  assert.equal((await edge('/lab/rl/slide')).status, 429);
});

test('API keys pick their tier from KV', async () => {
  await kvPut('apikey:k-gold', 'gold');
  const r = await edge('/lab/rl/tiered', { headers: { 'x-api-key': 'k-gold' } });
  assert.equal(r.headers.get('ratelimit-policy'), '"gold";q=20;w=86400');
  const plain = await edge('/lab/rl/tiered');
  assert.equal(plain.headers.get('ratelimit-policy'), '"tiered";q=3;w=86400');
  await kvPut('apikey:k-bogus', 'no-such-tier');
  const bogus = await edge('/lab/rl/tiered', { headers: { 'x-api-key': 'k-bogus' } });
  assert.equal(bogus.headers.get('ratelimit-policy'), '"tiered";q=3;w=86400', 'an unknown tier falls back to the rule policy');
});

test('log-only policies never block', async () => {
  for (let i = 0; i < 3; i++) {
    const r = await edge('/lab/rl/logonly');
    assert.equal(r.status, 200);
    if (i > 0) assert.equal(r.headers.get('x-ratelimit-status'), 'would-limit');
  }
});

test('allow list is never limited; deny list gets 403', async () => {
  await kvPut('allow:127.0.0.1', '1');
  try {
    for (let i = 0; i < 4; i++) assert.equal((await edge('/lab/rl/listed')).status, 200);
  } finally {
    await kvDelete('allow:127.0.0.1');
  }
  assert.equal((await edge('/lab/rl/listed')).status, 200);
  assert.equal((await edge('/lab/rl/listed')).status, 429);
  await kvPut('deny:127.0.0.1', '1');
  try {
    const r = await edge('/about');
    assert.equal(r.status, 403);
    assert.equal((await r.json()).status, 403);
  } finally {
    await kvDelete('deny:127.0.0.1');
  }
  assert.equal((await edge('/about')).status, 200);
});

const hits = async (path) => (await (await fetch(`${stack.origin.url}/_lab/hits?path=${encodeURIComponent(path)}`)).json()).hits;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('credential stuffing: 1,000 concurrent failures admit exactly the limit, then the penalty box', async () => {
  const results = await Promise.all(Array.from({ length: 1000 }, () => edge('/lab/rl/stuffing?status=401').then(async (r) => [r.status, await r.text(), r.headers.get('content-type')])));
  assert.equal(results.filter(([s]) => s === 401).length, 5, 'exactly the limit reached the origin');
  assert.equal(await hits('/lab/rl/stuffing'), 5);
  const refused = results.filter(([s]) => s === 429);
  assert.equal(refused.length, 995);
  assert.deepEqual(refused[0].slice(1), ['{"error":"slow down"}', 'application/json'], "the policy's own response");
  const during = await edge('/lab/rl/stuffing?status=200');
  assert.equal(during.status, 429, 'boxed: even a request that would succeed waits');
  const retry = Number(during.headers.get('retry-after'));
  assert.ok(retry > 50 && retry <= 60, `Retry-After ${retry} counts down block_for`);
});

test('block_for holds a key past the point where the quota alone would admit it', async () => {
  const statuses = [];
  for (let i = 0; i < 6; i++) statuses.push((await edge('/lab/rl/box')).status);
  assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
  const t0 = Date.now();
  await sleep(1500);
  assert.equal((await edge('/lab/rl/box')).status, 429, '1 s window refilled, the 3 s box has not ended');
  await sleep(Math.max(0, 3300 - (Date.now() - t0)));
  assert.equal((await edge('/lab/rl/box')).status, 200, 'out of the box');
});

test('count = ["401", "403"]: responses that do not match give their quota back', async () => {
  for (let i = 0; i < 8; i++) {
    assert.equal((await edge('/lab/rl/failonly')).status, 200, `success ${i + 1} spends nothing`);
    await sleep(30); // the refund runs after the response
  }
  assert.equal((await edge('/lab/rl/failonly?status=403')).status, 403);
  assert.equal((await edge('/lab/rl/failonly?status=401')).status, 401);
  assert.equal((await edge('/lab/rl/failonly')).status, 429, 'two failures spent the quota');
});

test('keys from a cookie, a query parameter and the path', async () => {
  const withSid = (sid) => edge('/lab/rl/cookie', { headers: { cookie: `theme=x; sid=${sid}` } });
  assert.deepEqual([(await withSid('a')).status, (await withSid('a')).status, (await withSid('b')).status], [200, 429, 200]);
  assert.deepEqual([(await edge('/lab/rl/cookie')).status, (await edge('/lab/rl/cookie')).status], [200, 200], 'no such cookie: not counted');
  assert.deepEqual([(await edge('/lab/rl/query?user=ann')).status, (await edge('/lab/rl/query?user=ann')).status], [200, 429]);
  assert.equal((await edge('/lab/rl/query2?user=ann')).status, 200, 'another path, another key');
  assert.equal((await edge('/lab/rl/query?user=bob')).status, 200);
});

test('the shipped login policy: failed sign-ins are limited, then the key is shut out for 15 minutes', async () => {
  const from = { 'cf-connecting-ip': '203.0.113.77', 'content-type': 'application/x-www-form-urlencoded' };
  const login = (password) => edge('/login', { method: 'POST', headers: from, body: `user=demo&password=${password}` });
  assert.equal((await login('demo-password')).status, 200, 'a good sign-in passes and spends nothing');
  await sleep(30);
  const statuses = [];
  for (let i = 0; i < 7; i++) statuses.push((await login(`guess${i}`)).status);
  assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429]);
  const shut = await login('demo-password');
  assert.equal(shut.status, 429, 'the right password waits out the box too');
  assert.equal(shut.headers.get('content-type'), 'application/json');
  assert.match(await shut.text(), /too many failed sign-ins/);
  assert.ok(Number(shut.headers.get('retry-after')) > 800, 'about 15 minutes');
  const other = await edge('/login', { method: 'POST', headers: { ...from, 'cf-connecting-ip': '203.0.113.78' }, body: 'user=demo&password=demo-password' });
  assert.equal(other.status, 200, 'other clients are not affected');
});

test('https_redirect sends plain HTTP to HTTPS with a 308', async () => {
  const e = await startEdge({ originUrl: stack.origin.url, vars: { EDGELAYER: { ...vars.EDGELAYER, rules: [{ name: 'tls', path: '/secure/*', https_redirect: true }, ...vars.EDGELAYER.rules] } } });
  try {
    const r = await fetch(e.url + '/secure/x?y=1', { redirect: 'manual' });
    assert.equal(r.status, 308);
    assert.equal(r.headers.get('location'), e.url.replace('http:', 'https:') + '/secure/x?y=1');
  } finally {
    await e.dispose();
  }
});

test('limiter unreachable: fail open or closed per policy', async () => {
  // The same worker without its Durable Object binding: the limiter cannot be reached.
  const broken = await startEdge({ originUrl: stack.origin.url, vars, noDurableObjects: true });
  try {
    const open = await fetch(broken.url + '/lab/rl/open');
    assert.equal(open.status, 200);
    assert.equal(open.headers.get('x-ratelimit-status'), 'unavailable');
    const closed = await fetch(broken.url + '/lab/rl/closed');
    assert.equal(closed.status, 503);
  } finally {
    await broken.dispose();
  }
});

test('security headers on pages, static assets and the API, hits included', async () => {
  await edge('/about');
  const page = await edge('/about');
  assert.equal(page.headers.get('x-cache'), 'HIT');
  const csp = page.headers.get('content-security-policy');
  // A hit of a page that needs no inline styles: the strict page CSP.
  assert.match(csp, /^default-src 'none'; .*style-src 'self' 'nonce-/);
  assert.match(csp, /script-src 'self' 'nonce-[A-Za-z0-9_-]{22}'/);
  assert.match(csp, /frame-ancestors 'self'/);
  assert.doesNotMatch(csp, /upgrade-insecure-requests/, 'plain HTTP: not upgraded');
  for (const [k, v] of [
    ['x-content-type-options', 'nosniff'],
    ['x-frame-options', 'SAMEORIGIN'],
    ['cross-origin-opener-policy', 'same-origin'],
    ['cross-origin-resource-policy', 'same-origin'],
    ['origin-agent-cluster', '?1'],
    ['x-xss-protection', '0'],
    ['x-permitted-cross-domain-policies', 'none'],
    ['x-dns-prefetch-control', 'off'],
  ]) {
    assert.equal(page.headers.get(k), v, k);
  }
  assert.ok(page.headers.get('permissions-policy'));
  assert.equal(page.headers.get('strict-transport-security'), null, 'no HSTS over plain HTTP');
  assert.equal(page.headers.get('expect-ct'), null);
  const img = await edge('/img/badge.png');
  // Assets: the site's own (same-site), locked down (issue 16: they graded C 55 without a CSP).
  assert.equal(img.headers.get('cross-origin-resource-policy'), 'same-site');
  assert.equal(img.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors 'none'");
  assert.equal(img.headers.get('x-frame-options'), 'DENY');
  const api = await edge('/api/tasks');
  assert.equal(api.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors 'none'");
  const powered = await edge('/lab/h?header=X-Powered-By:Express&header=Server:nginx/1.25.3');
  assert.equal(powered.headers.get('x-powered-by'), null);
  assert.equal(powered.headers.get('server'), null);
});
