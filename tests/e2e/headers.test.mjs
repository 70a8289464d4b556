// Security headers as the MDN HTTP Observatory grades them (tests/e2e/observatory.mjs): one
// response of every shipped rule, and the edge's own answers, over HTTPS (Miniflare passes the
// URL's scheme to the worker, so HSTS is sent as on Cloudflare).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, wranglerConfig, ADMIN_TOKEN } from './harness.mjs';
import { grade } from './observatory.mjs';

let stack;
before(async () => {
  // The shipped rules, and one nonce page rule for lab pages with inline styles.
  const cfg = wranglerConfig().vars.EDGELAYER;
  const styled = { name: 'styled', path: '/lab/styled*', cache: 'override', edge_ttl: '5m', minify: true, csp_nonce: true };
  const hinted = { name: 'hinted', path: '/lab/hinted*', cache: 'override', edge_ttl: '5m', early_hints: true, early_hints_max: 3 };
  stack = await startStack({ vars: { EDGELAYER: { ...cfg, rules: [styled, hinted, ...cfg.rules] } } });
});
after(async () => {
  await stack?.stop();
});

/** The graded answer once the page is served from cache (its fill landed in the background). */
async function gradedHit(path) {
  for (let i = 0; i < 50; i++) {
    const res = await stack.edge.mf.dispatchFetch(`https://edge.example${path}`);
    const body = await res.text();
    if (res.headers.get('x-cache') === 'HIT') return { status: res.status, body, csp: res.headers.get('content-security-policy'), link: res.headers.get('link'), ...grade(res.headers, { https: true }) };
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${path} never became a HIT`);
}

async function graded(path, init = {}) {
  const res = await stack.edge.mf.dispatchFetch(`https://edge.example${path}`, init);
  const body = await res.text();
  return { status: res.status, body, ...grade(res.headers, { https: true }) };
}

test('every shipped rule and the edge itself: A+ 130; a page\'s first answer A+ 120', async () => {
  const page = await graded('/');
  const css = page.body.match(/\/static\/app\.[0-9a-f]+\.css/)?.[0];
  const js = page.body.match(/\/static\/app\.[0-9a-f]+\.js/)?.[0];
  assert.ok(css && js, 'the page links its hashed assets');
  const routes = {
    // A page's first answer (a miss) keeps https: and 'unsafe-inline' in style-src (0 instead of
    // +10): whether it needs them is learnt from the body as it is stored.
    'html: / (miss)': [page, 120],
    'html: / (hit)': [await gradedHit('/'), 130],
    'html: /about (hit)': [await gradedHit('/about'), 130],
    'html: /tasks (hit)': [await gradedHit('/tasks'), 130],
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

test('pages with inline styles keep the relaxed style-src; the mark never leaves the edge', async () => {
  const html = (body) => `/lab/styled-${Math.random().toString(36).slice(2)}?header=Content-Type:text/html&header=Cache-Control:max-age=60&body=${encodeURIComponent(body)}`;
  const plain = await gradedHit(html('<!doctype html><html><head><style>p{color:red}</style></head><body><p>x</p></body></html>'));
  assert.match(plain.csp, /^default-src 'none';.* style-src 'self' 'nonce-[A-Za-z0-9_-]{22}'/, plain.csp);
  assert.equal(plain.score, 130);
  const styled = await gradedHit(html('<!doctype html><html><body><p style="color:red">x</p></body></html>'));
  assert.match(styled.csp, /style-src 'self' https: 'unsafe-inline' 'nonce-/, styled.csp);
  const foreign = await gradedHit(html('<!doctype html><html><head><link rel=stylesheet href="https://fonts.example/x.css"></head></html>'));
  assert.match(foreign.csp, /'unsafe-inline'/);
  // An origin cannot claim it for a page: the edge decides from the body it stored.
  const claimed = await gradedHit(`${html('<p style="x">y</p>')}&header=X-Edgelayer-Strict-Style:1`);
  assert.match(claimed.csp, /'unsafe-inline'/);
  const res = await stack.edge.mf.dispatchFetch(`https://edge.example/`);
  await res.arrayBuffer();
  assert.equal(res.headers.get('x-edgelayer-strict-style'), null);
});

test('a page that carries its origin\'s nonce gets edge nonces of the same length, so it does not grow', async () => {
  const own = 'abcdefghijklmnopqrstuvwxyz012345'; // 32 characters, as a hex-nonce origin makes
  const body = `<!doctype html><html><head><style nonce="${own}">p{color:red}</style></head><body><p>x</p><script nonce="${own}">go()</script></body></html>`;
  const path = `/lab/styled-nonce-${Math.random().toString(36).slice(2)}?header=Content-Type:text/html&header=Cache-Control:max-age=60&body=${encodeURIComponent(body)}`;
  const hit = await gradedHit(path);
  const nonce = /'nonce-([A-Za-z0-9_-]+)'/.exec(hit.csp)?.[1];
  assert.equal(nonce?.length, own.length, hit.csp);
  assert.equal(hit.body.match(new RegExp(`nonce="${nonce}"`, 'g'))?.length, 2, hit.body);
  assert.ok(!hit.body.includes(own), 'the origin\'s nonce is replaced');
  assert.ok(hit.body.length <= body.length, `${body.length} -> ${hit.body.length} bytes`);
  const marked = `${path.replace('styled-nonce-', 'styled-nonce-x')}&header=X-Edgelayer-Nonce-Length:60`;
  const short = await gradedHit(marked.replaceAll(own, 'abc'));
  assert.match(short.csp, /'nonce-[A-Za-z0-9_-]{22}'/, 'never shorter than 128 bits, and an origin\'s mark is not taken');
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

test('Early Hints: a page served from cache lists what it fetches first as Link preloads', async () => {
  let res;
  for (let i = 0; i < 50; i++) {
    res = await stack.edge.mf.dispatchFetch('https://edge.example/tasks');
    await res.arrayBuffer();
    if (res.headers.get('x-cache') === 'HIT') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const link = res.headers.get('link') ?? '';
  assert.match(link, /<\/static\/app\.[0-9a-f]+\.css>; rel=preload; as=style/, link);
  assert.match(link, /<\/static\/app\.[0-9a-f]+\.js>; rel=preload; as=script/, link);
  assert.doesNotMatch(link, /badge\.png/, 'an icon is not render-blocking');
  // The cap holds (early_hints_max = 3); a rule without early_hints stores none.
  const many = encodeURIComponent(`<head>${Array.from({ length: 12 }, (_, i) => `<link rel=stylesheet href=/s${i}.css>`).join('')}</head>`);
  const hinted = await gradedHit(`/lab/hinted?header=Content-Type:text/html&header=Cache-Control:max-age=60&body=${many}`);
  assert.equal(hinted.link, '</s0.css>; rel=preload; as=style, </s1.css>; rel=preload; as=style, </s2.css>; rel=preload; as=style');
  const plain = await gradedHit(`/lab/styled-hints?header=Content-Type:text/html&header=Cache-Control:max-age=60&body=${many}`);
  assert.equal(plain.link, null, 'the styled test rule has no early_hints');
});
