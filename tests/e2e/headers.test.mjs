// Security headers as the MDN HTTP Observatory grades them (tests/e2e/observatory.mjs): one
// response of every shipped rule, and the edge's own answers, over HTTPS (Miniflare passes the
// URL's scheme to the worker, so HSTS is sent as on Cloudflare).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, ADMIN_TOKEN } from './harness.mjs';
import { grade } from './observatory.mjs';

let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

async function graded(path, init = {}) {
  const res = await stack.edge.mf.dispatchFetch(`https://edge.example${path}`, init);
  const body = await res.text();
  return { status: res.status, body, ...grade(res.headers, { https: true }) };
}

test('every shipped rule and the edge itself: A+ 130, pages A+ 120', async () => {
  const page = await graded('/');
  const css = page.body.match(/\/static\/app\.[0-9a-f]+\.css/)?.[0];
  const js = page.body.match(/\/static\/app\.[0-9a-f]+\.js/)?.[0];
  assert.ok(css && js, 'the page links its hashed assets');
  const routes = {
    // html profile: the page CSP keeps https: and 'unsafe-inline' in style-src (0 instead of +10).
    'html: /': [page, 120],
    'html: /about': [await graded('/about'), 120],
    'admin (html profile)': [await graded('/admin/observatory'), 120],
    'lab (html profile)': [await graded('/lab/observatory'), 120],
    'hashed-static: css': [await graded(css), 130],
    'hashed-static: js': [await graded(js), 130],
    'hashed-static: a cache hit': [await graded(css), 130],
    'images: /img (auto)': [await graded('/img/coffee.jpg', { headers: { accept: 'image/avif,image/webp,*/*' } }), 130],
    'images: /cdn-cgi/image': [await graded('/cdn-cgi/image/width=128,format=auto/img/coffee.jpg'), 130],
    'images: a refused option (400)': [await graded('/cdn-cgi/image/width=abc/img/coffee.jpg'), 130],
    'api: /api/tasks': [await graded('/api/tasks'), 130],
    'login: POST /login': [await graded('/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=demo&password=wrong' }), 130],
    'origin-ops: /healthz': [await graded('/healthz'), 130],
    'edge: health': [await graded('/__edgelayer/health'), 130],
    'edge: metrics without the token (401)': [await graded('/__edgelayer/metrics'), 130],
    'edge: purge without the token': [await graded('/__edgelayer/purge', { method: 'POST', body: '{}' }), 130],
    'edge: dashboard': [await graded('/__edgelayer/dashboard', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }), 130],
  };
  const report = Object.entries(routes).map(([name, [g, want]]) => `${name}: ${g.status} ${g.grade} ${g.score} (want ${want}) ${JSON.stringify(g.tests)}`).join('\n');
  for (const [name, [g, want]] of Object.entries(routes)) {
    assert.ok(g.score >= want && g.grade === 'A+', `${name}: ${g.score}\n${report}`);
  }
  console.log(report);
});

test('static assets: CORP same-site, framing denied; the grader reproduces the issue\'s figures', async () => {
  const page = await graded('/');
  const css = page.body.match(/\/static\/app\.[0-9a-f]+\.css/)[0];
  const res = await stack.edge.mf.dispatchFetch(`https://edge.example${css}`);
  await res.arrayBuffer();
  assert.equal(res.headers.get('cross-origin-resource-policy'), 'same-site');
  assert.equal(res.headers.get('x-frame-options'), 'DENY');
  assert.equal(res.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors 'none'");
  // Before: static assets had no CSP and no X-Frame-Options (C 55 in issue 16).
  const before = new Headers(res.headers);
  before.delete('content-security-policy');
  before.delete('x-frame-options');
  before.set('cross-origin-resource-policy', 'cross-origin');
  assert.deepEqual([grade(before).score, grade(before).grade], [55, 'C']);
});
