// The dashboard in a real browser (Debian's Chromium, headless): it loads with Basic auth under
// its strict CSP, draws every chart from /__edgelayer/metrics.json, shows the alerts and the
// pool, and its screenshot is a real picture (kept in target/screenshots/dashboard.png).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { startStack, chromium, CHROMIUM, ROOT, ADMIN_TOKEN } from './harness.mjs';

const WINDOW = ['--window-size=1400,1100', '--hide-scrollbars'];
const skip = !CHROMIUM && 'Chromium not installed (apt-get install chromium)';
let stack;
before(async () => {
  if (!CHROMIUM) return;
  stack = await startStack();
  // Some traffic to draw: pages (misses, then hits), API reads, and 429s from the admin tier.
  for (let i = 0; i < 3; i++) {
    for (const p of ['/', '/about', '/tasks', '/api/tasks', '/static/app.e33b2218.css']) await (await fetch(stack.url + p)).arrayBuffer();
  }
  for (let i = 0; i < 12; i++) await (await fetch(`${stack.url}/admin/x`)).arrayBuffer();
});
after(async () => {
  await stack?.stop();
});

function dashboardUrl() {
  const u = new URL(`${stack.url}/__edgelayer/dashboard`);
  u.username = 'admin';
  u.password = ADMIN_TOKEN;
  return u.toString();
}

/** PNG width, height, and how many distinct RGB values its (unfiltered-enough) rows hold. */
function pngStats(buf) {
  assert.equal(buf.subarray(1, 4).toString(), 'PNG');
  const width = buf.readUInt32BE(16);
  const height = buf.readUInt32BE(20);
  const idat = [];
  for (let at = 8; at < buf.length; ) {
    const len = buf.readUInt32BE(at);
    if (buf.toString('latin1', at + 4, at + 8) === 'IDAT') idat.push(buf.subarray(at + 8, at + 8 + len));
    at += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const colours = new Set();
  for (let i = 0; i + 3 <= raw.length; i += 3 * 97) colours.add(raw.readUIntBE(i, 3));
  return { width, height, colours: colours.size };
}

test('the dashboard renders its charts, alerts and pool in Chromium under its CSP', { skip }, async () => {
  const { dom, console: lines } = await chromium([...WINDOW, '--dump-dom', dashboardUrl()]);
  const violations = lines.filter((l) => /Content Security Policy|Refused to/.test(l));
  assert.deepEqual(violations, [], violations.join('\n'));
  assert.match(dom, /<body[^>]*data-rendered="true"/, 'dashboard.js rendered the data');
  for (const id of ['chart-rps', 'chart-latency', 'chart-hit', 'chart-errors', 'chart-saved', 'chart-limited']) {
    const svg = dom.match(new RegExp(`<svg id="${id}"[\\s\\S]*?</svg>`));
    assert.ok(svg, `${id} exists`);
    assert.match(svg[0], /class="series"[^>]*data-points="\d+"/, `${id} has a drawn series`);
  }
  assert.match(dom, /data-alert="p95_latency"/);
  assert.match(dom, /data-alert="hit_ratio"/);
  assert.match(dom, /<span class="badge closed">closed<\/span>/, 'the pool table shows the origin');
  assert.match(dom, /<td>admin<\/td>/, 'the rules table lists the admin rule');
});

test('the dashboard screenshot is a picture, not a blank page', { skip }, async () => {
  const dir = join(ROOT, 'target', 'screenshots');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'dashboard.png');
  rmSync(file, { force: true });
  await chromium([...WINDOW, `--screenshot=${file}`, dashboardUrl()]);
  const png = readFileSync(file);
  const { width, height, colours } = pngStats(png);
  assert.deepEqual([width, height], [1400, 1100]);
  assert.ok(colours > 40, `${colours} distinct colours sampled`);
});

test('the dashboard asks for the token', { skip }, async () => {
  const res = await fetch(`${stack.url}/__edgelayer/dashboard`);
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate'), /^Basic realm=/);
});
