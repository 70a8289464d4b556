// The edge cache end to end: Miniflare's real Cache API and KV in front of the origin's lab
// routes (rule "lab": plain RFC 9111). Every test uses its own path; hits are counted at the
// origin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, startEdge, startOrigin, PURGE_TOKEN } from './harness.mjs';

let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const edge = (path, init) => fetch(stack.url + path, init);
const hits = async (path) => (await (await fetch(`${stack.origin.url}/_lab/hits?path=${encodeURIComponent(path)}`)).json()).hits;
const lab = (path, ...headers) => `${path}?${headers.map((h) => `header=${encodeURIComponent(h)}`).join('&')}`;
const xcache = (res) => res.headers.get('x-cache');

async function get(path, init) {
  const res = await edge(path, init);
  const text = await res.text();
  return { res, text, status: res.status, x: xcache(res), cs: res.headers.get('cache-status') };
}

test('MISS then HIT, with Age and Cache-Status', async () => {
  const url = lab('/lab/c/hit', 'Cache-Control: max-age=60', 'Age: 10');
  const a = await get(url);
  assert.equal(a.x, 'MISS');
  assert.match(a.cs, /^edgelayer;fwd=uri-miss;fwd-status=200;ttl=\d+;stored$/);
  const b = await get(url);
  assert.equal(b.x, 'HIT');
  assert.match(b.cs, /^edgelayer;hit;ttl=\d+/);
  assert.ok(Number(b.res.headers.get('age')) >= 10, 'RFC 9111 §4.2.3: Age counts the origin Age');
  assert.equal(b.text, a.text);
  assert.equal(await hits('/lab/c/hit'), 1);
  for (const name of b.res.headers.keys()) assert.ok(!/^x-edgelayer|^cf-cache-status/.test(name), `leaked ${name}`);
});

test('expired with a validator: REVALIDATED by a 304, then HIT again', async () => {
  // max-age=2: the refreshed copy's age counts from the 304's Date, whole seconds, so with 1 s
  // the third request could already find it stale on a slow run.
  const url = lab('/lab/c/reval', 'Cache-Control: max-age=2', 'ETag: "v1"');
  assert.equal((await get(url)).x, 'MISS');
  await sleep(2100);
  const b = await get(url);
  assert.equal(b.x, 'REVALIDATED');
  assert.match(b.cs, /fwd=stale;fwd-status=304/);
  assert.equal(JSON.parse(b.text).hits, 1, 'the stored body is served');
  assert.equal(await hits('/lab/c/reval'), 2, 'one conditional request reached the origin');
  assert.equal((await get(url)).x, 'HIT');
});

test('expired without a validator: EXPIRED and refetched', async () => {
  // max-age=2: `Date` has whole seconds, so a refreshed copy with max-age=1 can be stale at once
  // on a slow machine (seen once in a fresh-clone run).
  const url = lab('/lab/c/expired', 'Cache-Control: max-age=2');
  await get(url);
  await sleep(2100);
  const b = await get(url);
  assert.equal(b.x, 'EXPIRED');
  assert.equal(JSON.parse(b.text).hits, 2);
  // The refetched copy is stored in the background: wait for it to land.
  let next = await get(url);
  for (let i = 0; i < 20 && next.x === 'EXPIRED'; i++) {
    await sleep(20);
    next = await get(url);
  }
  assert.equal(next.x, 'HIT');
});

test('stale-while-revalidate: stale served at once, refreshed in the background', async () => {
  // max-age=3: the refreshed copy stays fresh while the poll below looks for it, on a slow machine too.
  const url = lab('/lab/c/swr', 'Cache-Control: max-age=3, stale-while-revalidate=30');
  await get(url);
  await sleep(3100);
  const b = await get(url);
  assert.equal(b.x, 'UPDATING');
  assert.equal(JSON.parse(b.text).hits, 1, 'the stale copy, at once');
  // The refresh runs after the response (waitUntil): poll until it has stored the new copy.
  let c;
  for (let i = 0; i < 40; i++) {
    c = await get(url);
    if (c.x === 'HIT') break;
    await sleep(50);
  }
  assert.equal(c.x, 'HIT');
  assert.equal(JSON.parse(c.text).hits, 2, 'the background refresh stored the new copy');
});

test('stale-if-error: origin returning 503 gets the stale copy', async () => {
  const url = `${lab('/lab/c/sie', 'Cache-Control: max-age=1, stale-if-error=60')}&after=1&then_status=503`;
  assert.equal((await get(url)).status, 200);
  await sleep(1100);
  const b = await get(url);
  assert.equal(b.status, 200);
  assert.equal(b.x, 'STALE');
  assert.match(b.cs, /fwd-status=503;ttl=-\d+;detail=stale-if-error/);
});

test('without stale-if-error the origin error passes through', async () => {
  const url = `${lab('/lab/c/nosie', 'Cache-Control: max-age=1')}&after=1&then_status=503`;
  await get(url);
  await sleep(1100);
  const b = await get(url);
  assert.equal(b.status, 503);
  assert.equal(b.x, 'EXPIRED');
});

test('concurrent misses for one key are collapsed into one origin fetch', async () => {
  const url = `${lab('/lab/c/collapse', 'Cache-Control: max-age=60')}&delay_ms=300`;
  const all = await Promise.all(Array.from({ length: 20 }, () => get(url)));
  assert.ok(all.every((r) => r.status === 200));
  assert.equal(await hits('/lab/c/collapse'), 1, `x-cache: ${all.map((r) => r.x).join(',')}`);
});

for (const [name, header, detail] of [
  ['no-store', 'Cache-Control: no-store, max-age=60', 'no-store'],
  ['private', 'Cache-Control: private, max-age=60', 'private'],
  ['set-cookie', 'Set-Cookie: sid=secret', 'set-cookie'],
  ['vary-star', 'Vary: *', 'vary-star'],
]) {
  test(`never stored: ${name}`, async () => {
    const path = `/lab/c/never-${name}`;
    const url = lab(path, header, ...(name === 'set-cookie' || name === 'vary-star' ? ['Cache-Control: public, max-age=60'] : []));
    const a = await get(url);
    assert.equal(a.x, 'MISS');
    assert.match(a.cs, new RegExp(`detail=${detail}`));
    assert.equal((await get(url)).x, 'MISS');
    assert.equal(await hits(path), 2);
  });
}

test('hit-for-pass never keeps a key uncached once the origin allows caching', async () => {
  const url = `${lab('/lab/c/hfp', 'Cache-Control: no-store')}&after=1&then_header=${encodeURIComponent('Cache-Control: max-age=60')}`;
  const a = await get(url);
  assert.equal(a.x, 'MISS');
  assert.match(a.cs, /detail=no-store/);
  const b = await get(url);
  assert.equal(b.x, 'MISS', 'passed straight to the origin (hit-for-pass)...');
  assert.match(b.cs, /stored/, '...whose now-cacheable answer is stored at once');
  let c;
  for (let i = 0; i < 20 && (c = await get(url)).x !== 'HIT'; i++) await sleep(25);
  assert.equal(c.x, 'HIT');
  assert.equal(await hits('/lab/c/hfp'), 2);
});

test('Authorization: requests bypass, answers are never shared', async () => {
  const url = lab('/lab/c/auth', 'Cache-Control: public, max-age=60');
  const a = await get(url, { headers: { authorization: 'Bearer alice' } });
  assert.equal(a.x, 'BYPASS');
  assert.match(a.cs, /detail=authorization/);
  const b = await get(url);
  assert.equal(b.x, 'MISS', "the authorised answer was not stored");
  const c = await get(url, { headers: { authorization: 'Bearer bob' } });
  assert.equal(c.x, 'BYPASS', 'a stored public copy is not served to an authorised request either');
});

test('Vary: each variant stored and served separately', async () => {
  const url = lab('/lab/c/vary', 'Cache-Control: max-age=60', 'Vary: Accept-Language');
  const en = { headers: { 'accept-language': 'en' } };
  const fr = { headers: { 'accept-language': 'fr' } };
  assert.equal((await get(url, en)).x, 'MISS');
  // The fill (and the variant index with it) is stored in the background: wait until it has
  // landed, or the next request can still find nothing under the URL (fwd=uri-miss).
  for (let i = 0; i < 50 && (await get(url, en)).x !== 'HIT'; i++) await new Promise((r) => setTimeout(r, 20));
  const f1 = await get(url, fr);
  assert.equal(f1.x, 'MISS');
  assert.match(f1.cs, /fwd=vary-miss/);
  const e2 = await get(url, en);
  const f2 = await get(url, fr);
  assert.deepEqual([e2.x, f2.x], ['HIT', 'HIT']);
  assert.equal(JSON.parse(e2.text).headers['accept-language'], 'en');
  assert.equal(JSON.parse(f2.text).headers['accept-language'], 'fr');
  assert.equal(await hits('/lab/c/vary'), 2);
});

test('conditional requests are answered 304 from cache', async () => {
  const url = lab('/lab/c/cond', 'Cache-Control: max-age=60', 'ETag: "abc"', 'Last-Modified: Tue, 01 Jul 2025 10:00:00 GMT');
  await get(url);
  const a = await get(url, { headers: { 'if-none-match': '"abc"' } });
  assert.equal(a.status, 304);
  assert.equal(a.x, 'HIT');
  assert.equal(a.text, '');
  const b = await get(url, { headers: { 'if-modified-since': 'Wed, 02 Jul 2025 10:00:00 GMT' } });
  assert.equal(b.status, 304);
  const c = await get(url, { headers: { 'if-none-match': '"other"' } });
  assert.equal(c.status, 200);
  assert.equal(await hits('/lab/c/cond'), 1, 'client conditionals never reached the origin');
});

test('HEAD fills the cache with a GET and sends no body', async () => {
  const url = lab('/lab/c/head', 'Cache-Control: max-age=60');
  const a = await get(url, { method: 'HEAD' });
  assert.equal(a.x, 'MISS');
  assert.equal(a.text, '');
  const b = await get(url);
  assert.equal(b.x, 'HIT');
  assert.equal(JSON.parse(b.text).method, 'GET');
  const c = await get(url, { method: 'HEAD' });
  assert.equal(c.x, 'HIT');
  assert.equal(c.text, '');
});

test('Range: a stored copy answers with the range; uncached ranges pass through unstored', async () => {
  const stored = `${lab('/lab/c/range-stored', 'Cache-Control: max-age=60', 'Content-Type: application/octet-stream')}&body=0123456789abcdefghij`;
  const full = await edge(stored);
  const bytes = new Uint8Array(await full.arrayBuffer());
  const r = await edge(stored, { headers: { range: 'bytes=0-9' } });
  const part = new Uint8Array(await r.arrayBuffer());
  assert.equal(r.headers.get('x-cache'), 'HIT');
  if (r.status === 206) {
    assert.deepEqual(part, bytes.slice(0, 10));
    assert.equal(r.headers.get('content-range'), `bytes 0-9/${bytes.length}`);
    assert.equal(r.headers.get('etag'), full.headers.get('etag'));
  } else {
    assert.equal(r.status, 200, 'a server may ignore Range (RFC 9110 §14.2)');
    assert.deepEqual(part, bytes);
  }
  for (const name of r.headers.keys()) assert.ok(!/^x-edgelayer|^cf-cache-status/.test(name), `leaked ${name}`);
  const u = await get(lab('/lab/c/range', 'Cache-Control: max-age=60'), { headers: { range: 'bytes=0-1' } });
  assert.equal(u.x, 'BYPASS');
  assert.match(u.cs, /detail=range/);
});

test('writes invalidate: /api/tasks never serves a list from before a write', async () => {
  const json = { 'content-type': 'application/json' };
  await get('/api/tasks');
  assert.equal((await get('/api/tasks')).x, 'HIT');
  const created = await (await edge('/api/tasks', { method: 'POST', headers: json, body: JSON.stringify({ title: 'invalidate me' }) })).json();
  const after = await get('/api/tasks');
  assert.notEqual(after.x, 'HIT');
  assert.ok(JSON.parse(after.text).some((t) => t.id === created.id));
  await get(`/api/tasks/${created.id}`);
  assert.equal((await get('/api/tasks')).x, 'HIT');
  await edge(`/api/tasks/${created.id}`, { method: 'PATCH', headers: json, body: JSON.stringify({ title: 'changed' }) });
  const list = await get('/api/tasks');
  assert.notEqual(list.x, 'HIT', 'a write to an item drops the cached collection');
  assert.ok(JSON.parse(list.text).some((t) => t.title === 'changed'));
  const one = await get(`/api/tasks/${created.id}`);
  assert.equal(JSON.parse(one.text).title, 'changed');
  assert.equal(one.res.headers.get('cache-control'), 'no-cache', 'rule browser_ttl = 0');
});

test('API GETs bypass the cache with a session cookie', async () => {
  const a = await get('/api/tasks', { headers: { cookie: 'session=abc' } });
  assert.equal(a.x, 'BYPASS');
  assert.match(a.cs, /detail=bypass-cookie/);
});

test('shipped rules: hashed static 1 year immutable, admin bypassed', async () => {
  const page = await (await edge('/')).text();
  const css = /href="(\/static\/app\.[0-9a-f]{8}\.css)"/.exec(page)[1];
  await get(css);
  const b = await get(css);
  assert.equal(b.x, 'HIT');
  assert.equal(b.res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  const admin = await get('/admin/x');
  assert.equal(admin.x, 'BYPASS');
  assert.match(admin.cs, /detail=rule-bypass/);
});

test('purge: 401 without the token; by URL, prefix and tag with it', async () => {
  const purge = (body, token = PURGE_TOKEN) =>
    edge('/__edgelayer/purge', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const cc = 'Cache-Control: max-age=600';
  const urls = {
    one: lab('/lab/p/one', cc),
    two: lab('/lab/p/dir/two', cc),
    tagged: lab('/lab/p/tagged', cc, 'Cache-Tag: promo, other'),
    keep: lab('/lab/p/keep', cc),
  };
  for (const u of Object.values(urls)) await get(u);
  for (const u of Object.values(urls)) assert.equal((await get(u)).x, 'HIT');

  let res = await edge('/__edgelayer/purge', { method: 'POST', body: '{"urls":["/lab/p/one"]}' });
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate'), /^Bearer/);
  assert.equal((await purge({ urls: ['/lab/p/one'] }, 'wrong')).status, 401);
  assert.equal((await get(urls.one)).x, 'HIT', 'an unauthorised purge did nothing');
  assert.equal((await purge({ nonsense: 1 })).status, 400);

  res = await purge({ urls: ['http://example.com/lab/p/one?x=1'] });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal((await get(urls.one)).x, 'MISS');
  assert.equal((await purge({ prefixes: ['/lab/p/dir/'] })).status, 200);
  assert.equal((await get(urls.two)).x, 'MISS');
  assert.equal((await purge({ tags: ['promo'] })).status, 200);
  assert.equal((await get(urls.tagged)).x, 'MISS');
  assert.equal((await get(urls.keep)).x, 'HIT', 'untargeted entries stay');
  assert.ok(!(await edge(urls.keep)).headers.has('cache-tag'), 'tags are not sent to clients');
});

test('stale-if-error with the origin stopped', async () => {
  const origin = await startOrigin();
  const e = await startEdge({ originUrl: origin.url });
  try {
    const url = `${e.url}${lab('/lab/c/down', 'Cache-Control: max-age=1, stale-if-error=60')}`;
    assert.equal((await fetch(url)).headers.get('x-cache'), 'MISS');
    const gone = `${e.url}${lab('/lab/c/down-nosie', 'Cache-Control: max-age=1')}`;
    await fetch(gone);
    await origin.stop();
    await sleep(1100);
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-cache'), 'STALE');
    assert.equal((await fetch(gone)).status, 502, 'nothing stale allowed: 502');
  } finally {
    await e.dispose();
    await origin.stop();
  }
});

test('a good config is logged as one line as the isolate starts, its origins without credentials', async () => {
  const log = [];
  const good = await startEdge({ originUrl: `http://user:secret@127.0.0.1:${new URL(stack.origin.url).port}/base`, vars: { EDGELAYER: { rules: [{ name: 'all', path: '/*' }] } }, log });
  try {
    for (let i = 0; i < 40 && !log.some((l) => l.includes('started:')); i++) await sleep(50);
    const line = log.find((l) => l.includes('started:'));
    assert.ok(line, log.join('\n'));
    assert.equal(JSON.parse(line).msg, `started: 1 rule, 1 origin: ${stack.origin.url}`);
    assert.ok(!log.some((l) => l.includes('secret')), log.join('\n'));
  } finally {
    await good.dispose();
  }
});

test('an invalid rule is logged as the isolate starts, and answers 500 naming the rule and field', async () => {
  const log = [];
  const bad = await startEdge({ originUrl: stack.origin.url, vars: { EDGELAYER: { rules: [{ name: 'oops', path: '/x', cache: 'override' }] } }, log });
  try {
    // The config is read when the isolate starts (src/edge/mod.rs, `start`), before any request.
    for (let i = 0; i < 40 && !log.some((l) => l.includes('oops')); i++) await sleep(50);
    assert.ok(log.some((l) => /config rule #1 \\"oops\\" field `edge_ttl`/.test(l)), log.join('\n'));
    assert.ok(!log.some((l) => l.includes('started:')), 'no start line for a broken config');
    const res = await fetch(bad.url + '/', { headers: { accept: 'application/json' } });
    assert.equal(res.status, 500);
    const { error } = await res.json();
    assert.match(error, /rule #1 "oops" field `edge_ttl`/);
  } finally {
    await bad.dispose();
  }
});
