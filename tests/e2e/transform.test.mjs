// Minification and compression end to end: raw bytes read with node:http (fetch would decode).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { startStack, startEdge, wranglerConfig } from './harness.mjs';

let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

function raw(base, path, { method = 'GET', headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = request(base + path, { method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}
const decode = (r) => {
  const enc = r.headers['content-encoding'];
  const bytes = enc === 'br' ? brotliDecompressSync(r.body) : enc === 'gzip' ? gunzipSync(r.body) : r.body;
  return bytes.toString('utf8');
};
const edge = (path, opts) => raw(stack.url, path, opts);
/** A page without its per-response CSP nonces, for comparing bodies. */
const unNonced = (page) => page.replace(/ nonce="[A-Za-z0-9_-]{22}"/g, '');
const origin = (path, opts) => raw(stack.origin.url, path, opts);

test('HTML is minified and brotli-encoded for br clients; the page keeps what matters', async () => {
  const o = await origin('/');
  // br first: Miniflare, like Cloudflare's front line, re-encodes for the client and picks the
  // first listed of equally weighted codings (see the next test for a gzip-first client).
  const r = await edge('/', { headers: { 'accept-encoding': 'br, gzip' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-encoding'], 'br');
  assert.match(r.headers.vary, /Accept-Encoding/i);
  const page = decode(r);
  const src = o.body.toString('utf8');
  assert.ok(page.length < src.length, `${src.length} -> ${page.length}`);
  assert.ok(r.body.length < page.length / 2, 'brotli');
  assert.ok(!page.includes('Styles are content-hashed'), 'plain comments removed');
  for (const kept of ['<!--[if IE]>', '<!--$-->', 'indentation   inside pre   is kept', '  line one\n      line two, indented']) {
    assert.ok(page.includes(kept), `missing ${JSON.stringify(kept)}`);
  }
  assert.ok(page.includes('document.documentElement.dataset.rendered   =   "edge"'), 'inline script untouched');
});

test('no Accept-Encoding: identity, still minified; gzip-only clients get gzip', async () => {
  const plain = await edge('/about', { headers: {} });
  assert.equal(plain.headers['content-encoding'], undefined);
  const page = unNonced(decode(plain));
  assert.ok(page.includes('{"@context":"https://schema.org","@type":"WebSite","name":"edgelayer demo"}'), 'JSON-LD compacted');
  const gz = await edge('/about', { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.equal(unNonced(decode(gz)), page);
  const br = await edge('/about', { headers: { 'accept-encoding': 'br' } });
  assert.equal(br.headers['content-encoding'], 'br');
  assert.equal(unNonced(decode(br)), page, 'every coding carries the same minified page');
  for (const ae of ['gzip, deflate, br', 'gzip, br', '', 'identity', 'br;q=0.5, gzip']) {
    for (let i = 0; i < 2; i++) {
      const r = await edge('/about', { headers: ae ? { 'accept-encoding': ae } : {} });
      assert.equal(unNonced(decode(r)), page, `Accept-Encoding ${JSON.stringify(ae)} (${r.headers['x-cache']}) decodes to the page`);
    }
  }
});

test('the brotli copy is cached: a hit sends the stored compressed bytes, with a weak ETag', async () => {
  const page = (await edge('/')).body.toString();
  const js = /src="(\/static\/app\.[0-9a-f]{8}\.js)"/.exec(page)[1];
  const h = { headers: { 'accept-encoding': 'br' } };
  const first = await edge(js, h);
  const second = await edge(js, h);
  assert.equal(second.headers['x-cache'], 'HIT');
  assert.equal(second.headers['content-encoding'], 'br');
  assert.deepEqual(second.body, first.body);
  assert.match(second.headers.etag, /^W\//, 'a transformed body gets a weak ETag');
  const identity = await edge(js);
  assert.equal(identity.headers['content-encoding'], undefined, 'identity clients get their own variant');
  assert.equal(decode(identity), decode(second));
  assert.equal(decode(identity), (await origin(js)).body.toString());
  const nm = await edge(js, { headers: { 'accept-encoding': 'br', 'if-none-match': second.headers.etag } });
  assert.equal(nm.status, 304);
  assert.equal(nm.headers.etag, second.headers.etag);
});

test('CSP nonces: fresh per response, in the header and on every script and style', async () => {
  const seen = new Set();
  for (let i = 0; i < 2; i++) {
    const r = await edge('/', { headers: { 'accept-encoding': 'br' } });
    const nonce = /'nonce-([A-Za-z0-9_-]{22})'/.exec(r.headers['content-security-policy'])?.[1];
    assert.ok(nonce, r.headers['content-security-policy']);
    seen.add(nonce);
    const page = decode(r);
    const tags = page.match(/<(script|style)\b[^>]*>/g);
    assert.ok(tags.length >= 3);
    for (const t of tags) assert.ok(t.includes(`nonce="${nonce}"`), t);
    assert.equal(r.headers.etag, undefined, 'no validators: a 304 would pair an old nonce with a new CSP');
    assert.equal(r.headers['cache-control'], 'private, no-cache');
  }
  assert.equal(seen.size, 2);
  const hit = await edge('/');
  assert.equal(hit.headers['x-cache'], 'HIT', 'the page itself is still cached (without a nonce)');
});

test('CSS compresses; images pass byte for byte', async () => {
  const page = (await edge('/')).body.toString();
  const css = /href="(\/static\/app\.[0-9a-f]{8}\.css)"/.exec(page)[1];
  const c = await edge(css, { headers: { 'accept-encoding': 'br' } });
  assert.equal(c.headers['content-encoding'], 'br');
  assert.equal(decode(c), (await origin(css)).body.toString());
  const img = await edge('/img/badge.png', { headers: { 'accept-encoding': 'br' } });
  assert.equal(img.headers['content-encoding'], undefined);
  assert.deepEqual(img.body, (await origin('/img/badge.png')).body);
  // Whether the platform itself compresses small or no-transform bodies is its business (Cloudflare's
  // front line, emulated by Miniflare, compresses text); what we skip is unit-tested in transform.rs.
});

test('an 8 MB page streams through minify + brotli intact', async () => {
  // The shipped config plus one rule that minifies a lab path (lab routes are not minified).
  const cfg = wranglerConfig().vars.EDGELAYER;
  const vars = { EDGELAYER: { ...cfg, rules: [{ name: 'big-page', path: '/lab/t/big', cache: 'bypass', minify: true }, ...cfg.rules] } };
  const e = await startEdge({ originUrl: stack.origin.url, vars });
  try {
    const unit = '<div>\n    <p>chunk   of   text</p>\n    <!-- comment -->\n</div>\n';
    const n = Math.ceil((8 * 1024 * 1024) / unit.length);
    const path = `/lab/t/big?header=${encodeURIComponent('Content-Type: text/html')}&body=${encodeURIComponent(unit)}&repeat=${n}`;
    const r = await raw(e.url, path, { headers: { 'accept-encoding': 'br' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], 'br');
    assert.equal(r.headers['content-length'], undefined, 'streamed (chunked), not buffered to a length');
    const page = decode(r);
    // A removed comment leaves the whitespace on each side of it (collapsed separately).
    const unitOut = '<div>\n<p>chunk of text</p>\n\n</div>\n';
    assert.equal(page.length, unitOut.length * n);
    assert.equal(page, unitOut.repeat(n));
    const body = encodeURIComponent('<p>   keep   me   </p>'.repeat(100));
    const nt = await raw(e.url, `/lab/t/nt?header=${encodeURIComponent('Content-Type: text/html')}&header=${encodeURIComponent('Cache-Control: no-transform')}&body=${body}`, { headers: { 'accept-encoding': 'br' } });
    assert.ok(decode(nt).includes('<p>   keep   me   </p>'.repeat(100)), 'no-transform: not minified');
  } finally {
    await e.dispose();
  }
});
