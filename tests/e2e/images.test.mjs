// Image resizing and negotiation end to end: the worker under Miniflare in front of the real
// origin (site images, and the lab's `file=` fixtures: a decompression bomb, truncated JPEGs,
// an EXIF-rotated photo, a transparent WebP, an AVIF).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { ROOT, startStack, startEdge, wranglerConfig } from './harness.mjs';
import { join } from 'node:path';

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
  assert.match(info(a), new RegExp(`^source=jpeg;600x400;${src.length} output=avif;256x171;${avif.length} tried=avif:\\d+ ms=\\d+ mem_mib=\\d+$`), 'the first candidate smaller than the source wins: JPEG is not encoded');
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

test('the source is fetched once for every size made from it, unless it is private', async () => {
  const sizes = ['w=64', 'w=96', 'w=128,f=jpeg'];
  const shared = '/lab/img/srcset?file=rotated.jpg&header=cache-control:max-age=60';
  for (const s of sizes) {
    const r = await edge(`/cdn-cgi/image/${s}${shared}`);
    assert.equal(r.status, 200, s);
    await bytes(r);
    await new Promise((done) => setTimeout(done, 150)); // the copy is stored after the answer
  }
  assert.equal(await hits('/lab/img/srcset'), 1, 'three sizes, one origin fetch');
  const own = '/lab/img/private-srcset?file=rotated.jpg&header=cache-control:private,max-age=60';
  for (const s of sizes) {
    const r = await edge(`/cdn-cgi/image/${s}${own}`);
    assert.equal(r.status, 200, s);
    await bytes(r);
    await new Promise((done) => setTimeout(done, 150));
  }
  assert.equal(await hits('/lab/img/private-srcset'), 3, 'a private source is never kept');
});

test('EXIF orientation is applied', async () => {
  const r = await edge('/cdn-cgi/image/w=256,f=jpeg/lab/img/rotated?file=rotated.jpg&header=cache-control:max-age=60');
  assert.equal(r.status, 200);
  assert.match(info(r), /source=jpeg;600x400;\d+ output=jpeg;256x171;/, 'stored 400x600, shown 600x400');
});

test('animated GIFs are resized frame by frame; unchanged ones pass through byte for byte; anim=false takes the first frame', async () => {
  const gif = await origin('/img/spinner.gif');
  const r = await edge('/cdn-cgi/image/w=64/img/spinner.gif');
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'image/gif');
  assert.deepEqual(await bytes(r), gif, 'already 64 px wide: nothing to do');
  assert.match(info(r), /reason="animated"/);
  const small = await edge('/cdn-cgi/image/w=32/img/spinner.gif');
  assert.match(info(small), /reason="not smaller than the source" tried=gif:\d+/, 'a re-encode larger than the source: the original');
  assert.deepEqual(await bytes(small), gif);
  const src = await origin('/lab/img/anim?file=animated.gif');
  const resized = await edge('/cdn-cgi/image/w=64/lab/img/anim?file=animated.gif');
  assert.equal(resized.headers.get('content-type'), 'image/gif');
  assert.match(info(resized), /output=gif;64x48;/);
  const out = await bytes(resized);
  assert.equal(out.subarray(0, 6).toString(), 'GIF89a');
  assert.ok(out.length < src.length);
  assert.equal(out.toString('latin1').split('\x21\xf9\x04').length - 1, 3, 'all 3 frames (one graphic control block each)');
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
    ['/cdn-cgi/image/w=abc/img/coffee.jpg', 400, /w=abc is not a width in pixels/],
    ['/cdn-cgi/image/fit=stretch/img/coffee.jpg', 400, /fit=stretch/],
    ['/cdn-cgi/image/nonsense=5/img/coffee.jpg', 200, /^/],
    ['/cdn-cgi/image/w=256/img/missing.jpg', 404, /not found/],
    ['/cdn-cgi/image/w=256/lab/img/bomb?file=bomb.png', 413, /20000x20000 pixels/],
    ['/cdn-cgi/image/w=256/lab/img/cut?file=truncated.jpg', 422, /could not be decoded/],
    ['/cdn-cgi/image/w=256/lab/img/scan-cut?file=cut.jpg', 422, /truncated/],
    ['/cdn-cgi/image/w=256/lab/img/photo-avif?file=photo.avif', 415, /AVIF/],
    ['/cdn-cgi/image/w=256/about.html', 415, /not a JPEG, PNG, GIF or WebP/],
    ['/cdn-cgi/image/w=256/lab/img/down?status=503', 502, /origin answered 503/],
  ];
  for (const [path, status, message] of cases) {
    const r = await edge(path, 'text/plain');
    const text = r.status === 200 ? '' : await r.text();
    assert.equal(r.status, status, `${path}: ${text}`);
    assert.match(text, message, path);
  }
  const post = await edge('/cdn-cgi/image/w=256/img/coffee.jpg', CHROME, { method: 'POST', body: 'x' });
  assert.equal(post.status, 405);
});

test('off-ladder values snap and options not implemented are ignored, saying so; a strict edge refuses them', async () => {
  const r = await edge('/cdn-cgi/image/w=300,q=74,trim=5,brightness=1.2/img/coffee.jpg', '*/*');
  assert.equal(r.status, 200);
  assert.match(info(r), /output=jpeg;256x171;/);
  assert.equal(r.headers.get('x-edgelayer-image-options'), 'w=300 snapped to 256; quality=74 snapped to 75; trim ignored; brightness ignored');
  const vars = wranglerConfig().vars;
  const strict = await startEdge({ originUrl: stack.origin.url, vars: { EDGELAYER: { ...vars.EDGELAYER, images: { ...vars.EDGELAYER.images, ladder: 'strict', unknown_options: 'reject' } } } });
  try {
    for (const [path, message] of [
      ['/cdn-cgi/image/w=641/img/coffee.jpg', /use one of 16, 32/],
      ['/cdn-cgi/image/q=74/img/coffee.jpg', /quality=74 is not allowed/],
      ['/cdn-cgi/image/trim=5/img/coffee.jpg', /trim is not implemented/],
      ['/cdn-cgi/image/nonsense=5/img/coffee.jpg', /unknown option/],
    ]) {
      const res = await fetch(strict.url + path, { headers: { accept: 'text/plain' } });
      assert.equal(res.status, 400, path);
      assert.match(await res.text(), message, path);
    }
  } finally {
    await strict.dispose();
  }
});

test('Cloudflare options: rotate, flip, blur, sharpen, gravity, background colours, fit=squeeze', async () => {
  for (const [opts, dims] of [
    ['w=256,rotate=90', '256x384'],
    ['w=256,flip=h', '256x171'],
    ['w=256,blur=20', '256x171'],
    ['w=256,sharpen=2', '256x171'],
    ['w=128,h=128,fit=cover,gravity=auto', '128x128'],
    ['w=128,h=128,fit=crop,gravity=0.1x0.9', '128x128'],
    ['w=128,h=128,fit=pad,background=rgb(255%2C0%2C0)', '128x128'],
    ['w=128,h=128,fit=pad,background=red', '128x128'],
    ['w=128,h=128,fit=pad,background=%23ffffff', '128x128'],
    ['w=128,h=128,fit=squeeze', '128x128'],
    ['w=256,q=medium-low', '256x171'],
    ['w=128,h=128,fit=cover,g=face', '128x128'],
  ]) {
    const r = await edge(`/cdn-cgi/image/${opts},f=jpeg/img/coffee.jpg`, '*/*');
    assert.equal(r.status, 200, `${opts}: ${await r.clone().text()}`);
    assert.match(info(r), new RegExp(`output=jpeg;${dims};`), opts);
  }
});

test('format=json describes the output without sending an image', async () => {
  const src = await origin('/img/coffee.jpg');
  const r = await edge('/cdn-cgi/image/w=256,format=json/img/coffee.jpg');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  assert.deepEqual(await r.json(), { width: 256, height: 171, original: { file_size: src.length, width: 600, height: 400, format: 'image/jpeg' } });
});

test('onerror=redirect sends the client to the source when the image cannot be made', async () => {
  const r = await edge('/cdn-cgi/image/w=256,onerror=redirect/lab/img/redir?file=cut.jpg', '*/*', { redirect: 'manual' });
  assert.equal(r.status, 302);
  assert.equal(new URL(r.headers.get('location')).pathname + new URL(r.headers.get('location')).search, '/lab/img/redir?file=cut.jpg');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  const missing = await edge('/cdn-cgi/image/w=256,onerror=redirect/img/missing.jpg', '*/*', { redirect: 'manual' });
  assert.equal(missing.status, 404, 'nothing to redirect to');
});

test('width=auto sizes from client hints and varies on them; pages ask for the hints', async () => {
  const page = await edge('/', 'text/html');
  assert.match(page.headers.get('accept-ch') ?? '', /Sec-CH-Width/);
  const hinted = await edge('/cdn-cgi/image/w=auto,f=jpeg/img/coffee.jpg', '*/*', { headers: { 'sec-ch-width': '300' } });
  assert.equal(hinted.status, 200);
  assert.match(info(hinted), /output=jpeg;256x171;/, '300 device pixels, snapped to the ladder');
  assert.match(hinted.headers.get('vary'), /Sec-CH-Width/);
  const viewport = await edge('/cdn-cgi/image/w=auto,f=jpeg/img/coffee.jpg', '*/*', { headers: { 'viewport-width': '200', 'sec-ch-dpr': '2' } });
  assert.match(info(viewport), /output=jpeg;384x256;/, '200 CSS px x DPR 2 = 400, snapped to 384');
  const none = await edge('/cdn-cgi/image/w=auto,f=jpeg/img/coffee.jpg', '*/*');
  assert.match(info(none), /output=jpeg;600x400;|^original=jpeg/, 'no hints: the source width');
  assert.match(none.headers.get('x-edgelayer-image-options'), /without client hints/);
});

test('a transparent WebP keeps its alpha; an AVIF source goes through to clients that take it', async () => {
  const webp = await edge('/cdn-cgi/image/w=128/lab/img/alpha?file=alpha.webp', 'image/webp,*/*');
  assert.equal(webp.status, 200);
  assert.match(info(webp), /output=webp;128x96;/);
  const png = await edge('/cdn-cgi/image/w=128/lab/img/alpha?file=alpha.webp', '*/*');
  assert.equal(png.headers.get('content-type'), 'image/png', 'no WebP: PNG, never JPEG (alpha)');
  const avifSrc = await origin('/lab/img/avif?file=photo.avif');
  const avif = await edge('/cdn-cgi/image/w=256/lab/img/avif?file=photo.avif', CHROME);
  assert.equal(avif.status, 200);
  assert.equal(avif.headers.get('content-type'), 'image/avif');
  assert.deepEqual(await bytes(avif), avifSrc);
});

test('lossy WebP (libwebp in the image worker) for clients that list WebP but not AVIF, and above the AVIF cap', async () => {
  const src = await origin('/img/coffee.jpg');
  const safari = await edge('/cdn-cgi/image/w=256/img/coffee.jpg', 'image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5');
  assert.equal(safari.headers.get('content-type'), 'image/webp', info(safari));
  const webp = await bytes(safari);
  // RIFF, then a lossy VP8 frame: its header holds the size (14 bits each, RFC 6386 §9.1).
  assert.equal(webp.subarray(8, 16).toString(), 'WEBPVP8 ', 'lossy, not lossless VP8L');
  assert.deepEqual([webp.readUInt16LE(26) & 0x3fff, webp.readUInt16LE(28) & 0x3fff], [256, 171]);
  assert.ok(webp.length < src.length / 4, `${webp.length} bytes: a photo, lossy`);
  assert.match(info(safari), /output=webp;256x171;\d+ tried=webp:\d+ /);
  // AVIF stops at 1200 px a side (Cloudflare's cap): a Chrome client gets WebP there.
  const big = await edge('/cdn-cgi/image/w=1920,h=1080,fit=cover/lab/img/big?file=cmyk-icc.jpg', CHROME);
  assert.equal(big.headers.get('content-type'), 'image/webp', info(big));
  assert.match(info(big), /output=webp;1920x1080;\d+ tried=webp:\d+ /);
});

test('colour profiles: CMYK loses its profile, wide-gamut sources are converted and get AVIF', async () => {
  const hasIcc = (b) => b.includes(Buffer.from('ICC_PROFILE\0'));
  assert.ok(hasIcc(await origin('/lab/img/cmyk?file=cmyk-icc.jpg')));
  const cmyk = await edge('/cdn-cgi/image/w=256/lab/img/cmyk?file=cmyk-icc.jpg', '*/*');
  assert.equal(cmyk.headers.get('content-type'), 'image/jpeg');
  const out = await bytes(cmyk);
  assert.ok(!hasIcc(out), 'no CMYK profile on an RGB JPEG');
  assert.ok(out.length < 30000, `${out.length} bytes`);
  for (const file of ['adobergb.jpg', 'grey-gamma.jpg', 'cmyk-icc.jpg']) {
    const r = await edge(`/cdn-cgi/image/w=384/lab/img/p-${file}?file=${file}`, CHROME);
    assert.equal(r.headers.get('content-type'), 'image/avif', `${file}: ${info(r)}`);
  }
});

test('never larger than the source, for any Accept: a WebP source wins over its PNG re-encode for */*', async () => {
  const src = await origin('/lab/img/webp-src?file=alpha.webp');
  for (const accept of ['*/*', 'image/*', 'image/png,image/*;q=0.8']) {
    const r = await edge('/cdn-cgi/image/w=384/lab/img/webp-src?file=alpha.webp', accept);
    const out = await bytes(r);
    assert.ok(out.length <= src.length, `${accept}: ${out.length} > ${src.length}`);
    assert.equal(r.headers.get('content-type'), 'image/webp', `${accept}: the source's own bytes`);
  }
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

test('the image worker: without it bound, image requests answer 501; it takes only POSTed jobs', async () => {
  // The edge alone (a script of the caller's: no image worker beside it).
  const alone = await startEdge({ originUrl: stack.origin.url, scriptPath: join(ROOT, 'build/index.js'), log: [] });
  try {
    const r = await fetch(`${alone.url}/cdn-cgi/image/w=64/img/coffee.jpg`, { headers: { accept: CHROME } });
    assert.equal(r.status, 501);
    assert.match(await r.text(), /no image worker is bound/);
    const page = await fetch(`${alone.url}/__edgelayer/health`);
    assert.equal(page.status, 200, 'everything else still works');
    await page.arrayBuffer();
  } finally {
    await alone.dispose();
  }
  // The image worker itself, as the binding reaches it.
  const images = await stack.edge.mf.getWorker('edgelayer-images');
  const get = await images.fetch('https://edgelayer-images/');
  assert.equal(get.status, 405);
  await get.arrayBuffer();
  const none = await images.fetch('https://edgelayer-images/', { method: 'POST', body: 'x' });
  assert.equal(none.status, 400);
  assert.match(await none.text(), /no x-edgelayer-image-job header/);
  const garbage = await images.fetch('https://edgelayer-images/', { method: 'POST', body: 'x', headers: { 'x-edgelayer-image-job': 'e30' } });
  assert.equal(garbage.status, 400);
  assert.match(await garbage.text(), /bad x-edgelayer-image-job/);
});
