// Image resizing and negotiation end to end: the worker under Miniflare in front of the real
// origin (site images, and the lab's `file=` fixtures: a decompression bomb, a truncated JPEG,
// an EXIF-rotated photo).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { startStack, startEdge, wranglerConfig } from './harness.mjs';

const CHROME = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';
let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

const edge = (path, accept = CHROME, init = {}) => fetch(stack.url + path, { ...init, headers: { accept, ...(init.headers ?? {}) } });
const origin = async (path) => Buffer.from(await (await fetch(stack.origin.url + path)).arrayBuffer());
const bytes = async (res) => Buffer.from(await res.arrayBuffer());
const hits = async (path) => (await (await fetch(`${stack.origin.url}/_lab/hits?path=${encodeURIComponent(path)}`)).json()).hits;
const info = (res) => res.headers.get('x-edgelayer-image') ?? '';

test('resizes, serves AVIF to browsers that take it, and caches each variant once', async () => {
  const src = await origin('/img/coffee.jpg');
  const a = await edge('/cdn-cgi/image/w=256/img/coffee.jpg');
  assert.equal(a.status, 200, await a.clone().text());
  assert.equal(a.headers.get('content-type'), 'image/avif');
  const avif = await bytes(a);
  assert.equal(Number(a.headers.get('content-length')), avif.length);
  assert.equal(avif.subarray(4, 12).toString(), 'ftypavif');
  assert.ok(avif.length < src.length, `${avif.length} < ${src.length}`);
  assert.match(a.headers.get('vary'), /accept/i);
  assert.match(info(a), new RegExp(`^source=jpeg;600x400;${src.length} output=avif;256x171;${avif.length} tried=avif:\\d+,jpeg:\\d+ ms=\\d+$`));
  assert.equal(a.headers.get('x-cache'), 'MISS');
  assert.match(a.headers.get('cache-control'), /max-age=86400/, "the source rule's browser TTL");

  const b = await edge('/cdn-cgi/image/width=256,fit=scale-down/img/coffee.jpg');
  assert.equal(b.headers.get('x-cache'), 'HIT', 'an equivalent spelling shares the entry');
  assert.deepEqual(await bytes(b), avif);

  const j = await edge('/cdn-cgi/image/w=256/img/coffee.jpg', '*/*');
  assert.equal(j.headers.get('content-type'), 'image/jpeg');
  assert.equal(j.headers.get('x-cache'), 'MISS', 'another Accept bucket is another variant');
  const jpeg = await bytes(j);
  assert.deepEqual(jpeg.subarray(0, 3), Buffer.from([0xff, 0xd8, 0xff]));
  assert.equal((await edge('/cdn-cgi/image/w=256/img/coffee.jpg', 'image/png,*/*;q=0.5')).headers.get('x-cache'), 'HIT', 'same bucket, other spelling');

  const head = await edge('/cdn-cgi/image/w=256/img/coffee.jpg', '*/*', { method: 'HEAD' });
  assert.equal(Number(head.headers.get('content-length')), jpeg.length);
  assert.equal((await bytes(head)).length, 0);
});

test('concurrent requests for one variant fetch and encode once', async () => {
  const url = '/cdn-cgi/image/w=128/lab/img/collapse?file=rotated.jpg&delay_ms=300&header=cache-control:max-age=60';
  const all = await Promise.all([1, 2, 3, 4].map(() => edge(url)));
  const bodies = await Promise.all(all.map(bytes));
  for (const r of all) assert.equal(r.status, 200);
  for (const b of bodies) assert.deepEqual(b, bodies[0]);
  assert.equal(await hits('/lab/img/collapse'), 1);
});

test('EXIF orientation is applied', async () => {
  const r = await edge('/cdn-cgi/image/w=256,f=jpeg/lab/img/rotated?file=rotated.jpg&header=cache-control:max-age=60');
  assert.equal(r.status, 200);
  assert.match(info(r), /source=jpeg;600x400;\d+ output=jpeg;256x171;/, 'stored 400x600, shown 600x400');
});

test('animations pass through byte for byte; anim=false takes the first frame', async () => {
  const gif = await origin('/img/spinner.gif');
  const r = await edge('/cdn-cgi/image/w=64/img/spinner.gif');
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'image/gif');
  assert.deepEqual(await bytes(r), gif);
  assert.match(info(r), /reason="animated"/);
  const still = await edge('/cdn-cgi/image/w=32,anim=false/img/spinner.gif', '*/*');
  assert.equal(still.headers.get('content-type'), 'image/png');
  assert.match(info(still), /output=png;32x32;/);
});

test('rules with images = "auto" negotiate without resizing, and never send more bytes', async () => {
  const png = await origin('/img/badge.png');
  const modern = await edge('/img/badge.png');
  const out = await bytes(modern);
  assert.match(modern.headers.get('content-type'), /^image\/(avif|webp)$/);
  assert.ok(out.length < png.length);
  assert.match(modern.headers.get('vary'), /accept/i);
  const legacy = await edge('/img/badge.png', '*/*');
  assert.equal(legacy.headers.get('content-type'), 'image/png');
  assert.deepEqual(await bytes(legacy), png, 'a PNG re-encode is not smaller: the original');
});

test('bad requests and bad sources get clear errors', async () => {
  const cases = [
    ['/cdn-cgi/image/w=641/img/coffee.jpg', 400, /use one of 16, 32/],
    ['/cdn-cgi/image/q=74/img/coffee.jpg', 400, /quality=74 is not allowed/],
    ['/cdn-cgi/image/blur=5/img/coffee.jpg', 400, /unknown option/],
    ['/cdn-cgi/image/w=256/img/missing.jpg', 404, /not found/],
    ['/cdn-cgi/image/w=256/lab/img/bomb?file=bomb.png', 413, /20000x20000 pixels/],
    ['/cdn-cgi/image/w=256/lab/img/cut?file=truncated.jpg', 422, /could not be decoded/],
    ['/cdn-cgi/image/w=256/about.html', 415, /not a JPEG, PNG, GIF or WebP/],
    ['/cdn-cgi/image/w=256/lab/img/down?status=503', 502, /origin answered 503/],
  ];
  for (const [path, status, message] of cases) {
    const r = await edge(path, 'text/plain');
    const text = await r.text();
    assert.equal(r.status, status, `${path}: ${text}`);
    assert.match(text, message, path);
  }
  const post = await edge('/cdn-cgi/image/w=256/img/coffee.jpg', CHROME, { method: 'POST', body: 'x' });
  assert.equal(post.status, 405);
});

test('signed URLs: a configured key refuses unsigned and tampered URLs; onerror=original', async () => {
  const vars = wranglerConfig().vars;
  const key = 'e2e-image-key';
  const signed = await startEdge({
    originUrl: stack.origin.url,
    vars: { IMAGE_KEY: key, EDGELAYER: { ...vars.EDGELAYER, images: { ...vars.EDGELAYER.images, signing_key_secret: 'IMAGE_KEY', onerror: 'original' } } },
  });
  try {
    const path = '/cdn-cgi/image/w=128/img/chelsea.jpg';
    const sig = createHmac('sha256', key).update(path).digest('hex');
    assert.equal((await fetch(signed.url + path)).status, 403);
    assert.equal((await fetch(`${signed.url}${path}?sig=${'0'.repeat(64)}`)).status, 403);
    assert.equal((await fetch(`${signed.url}/cdn-cgi/image/w=256/img/chelsea.jpg?sig=${sig}`)).status, 403, 'the options are signed');
    const ok = await fetch(`${signed.url}${path}?sig=${sig}`, { headers: { accept: '*/*' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('content-type'), 'image/jpeg');

    const cut = '/cdn-cgi/image/w=128/lab/img/cut2';
    const q = 'file=truncated.jpg';
    const csig = createHmac('sha256', key).update(`${cut}?${q}`).digest('hex');
    const r = await fetch(`${signed.url}${cut}?${q}&sig=${csig}`);
    assert.equal(r.status, 200, 'onerror=original');
    assert.deepEqual(await bytes(r), await origin('/lab/img/cut2?file=truncated.jpg'));
    assert.match(info(r), /error=/);
  } finally {
    await signed.dispose();
  }
});
