// The walking skeleton end to end: every origin route through the built worker.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startStack, startEdge, freePort, ADMIN_TOKEN } from './harness.mjs';

let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

const edge = (path, init) => fetch(stack.url + path, init);
const direct = (path, init) => fetch(stack.origin.url + path, init);

function serverTiming(res) {
  const value = res.headers.get('server-timing') ?? '';
  const dur = (name) => Number(new RegExp(`${name};dur=([0-9.]+)`).exec(value)?.[1]);
  return { value, edge: dur('edge'), origin: dur('origin') };
}

test('the demo page comes through with Server-Timing', async () => {
  const res = await edge('/');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  const st = serverTiming(res);
  assert.ok(st.edge >= 0 && st.origin >= 0, `server-timing: ${st.value}`);
  const body = await res.text();
  assert.ok(body.includes('<textarea') && body.length <= (await (await direct('/')).text()).length, 'the page (minified by the html rule)');
  const css = /href="(\/static\/app\.[0-9a-f]{8}\.css)"/.exec(body)[1];
  assert.equal(await (await edge(css)).text(), await (await direct(css)).text(), 'other bodies pass unchanged');
});

test('HEAD keeps the length and sends no body', async () => {
  const get = await edge('/img/coffee.jpg');
  const bytes = (await get.arrayBuffer()).byteLength;
  const res = await edge('/img/coffee.jpg', { method: 'HEAD' });
  assert.equal(res.status, 200);
  assert.equal(Number(res.headers.get('content-length')), bytes);
  assert.equal((await res.arrayBuffer()).byteLength, 0);
  assert.equal(res.headers.get('etag'), get.headers.get('etag'));
});

test('conditional GETs get a 304 through the worker', async () => {
  const first = await edge('/img/chelsea.jpg');
  const etag = first.headers.get('etag');
  assert.ok(etag);
  const res = await edge('/img/chelsea.jpg', { headers: { 'if-none-match': etag } });
  assert.equal(res.status, 304);
  assert.equal(res.headers.get('etag'), etag);
  assert.equal(res.headers.get('x-cache'), 'HIT', 'answered by the edge cache');
  assert.ok(serverTiming(res).edge >= 0);
});

test('tasks API: POST, GET, PUT, PATCH, DELETE through the worker', async () => {
  const json = { 'content-type': 'application/json' };
  let res = await edge('/api/tasks', { method: 'POST', headers: json, body: JSON.stringify({ title: 'e2e task' }) });
  assert.equal(res.status, 201);
  const created = await res.json();
  assert.equal(res.headers.get('location'), `/api/tasks/${created.id}`);

  res = await edge(`/api/tasks/${created.id}`);
  assert.deepEqual(await res.json(), created);

  res = await edge(`/api/tasks/${created.id}`, { method: 'PUT', headers: json, body: JSON.stringify({ title: 'renamed' }) });
  assert.equal((await res.json()).title, 'renamed');
  res = await edge(`/api/tasks/${created.id}`, { method: 'PATCH', headers: json, body: JSON.stringify({ done: true }) });
  assert.equal((await res.json()).done, true);

  res = await edge('/api/tasks');
  assert.ok((await res.json()).some((t) => t.id === created.id && t.title === 'renamed'));

  res = await edge(`/api/tasks/${created.id}`, { method: 'DELETE' });
  assert.equal(res.status, 204);
  res = await edge(`/api/tasks/${created.id}`);
  assert.equal(res.status, 404);
  assert.equal((await res.json()).status, 404);

  res = await edge('/api/tasks', { method: 'POST', headers: json, body: '{broken' });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).status, 400);
});

test('request bodies stream through whole, including a streamed upload', async () => {
  const size = 8 * 1024 * 1024;
  const big = new Uint8Array(size).map((_, i) => i % 251);
  let res = await edge('/lab/upload', { method: 'POST', body: big });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).body_bytes, size);

  const chunks = 64;
  const stream = new ReadableStream({
    pull(controller) {
      if (this.sent === undefined) this.sent = 0;
      if (this.sent++ === chunks) return controller.close();
      controller.enqueue(new Uint8Array(16 * 1024).fill(7));
    },
  });
  res = await edge('/lab/upload-stream', { method: 'PUT', body: stream, duplex: 'half' });
  assert.equal((await res.json()).body_bytes, chunks * 16 * 1024);
});

test('the client IP reaches the origin; forwarding headers are set', async () => {
  const res = await edge('/lab/ip', { headers: { 'x-forwarded-for': '198.51.100.9', 'x-real-ip': '6.6.6.6' } });
  const echo = await res.json();
  const ip = echo.headers['x-real-ip'];
  assert.match(ip ?? '', /^(127\.0\.0\.1|::1)$/, `client ip: ${JSON.stringify(echo.headers)}`);
  assert.equal(echo.headers['x-forwarded-for'], `198.51.100.9, ${ip}`);
  // The runtime owns CF-Connecting-IP on subrequests (workerd drops it); never the client's value.
  assert.ok([undefined, ip].includes(echo.headers['cf-connecting-ip']));
  assert.equal(echo.headers['x-forwarded-proto'], 'http');
  assert.ok(echo.headers['x-forwarded-host']);
});

test('redirects and error statuses pass through unchanged', async () => {
  let res = await edge('/lab/r?status=302&header=Location:/about', { redirect: 'manual' });
  assert.equal(res.status, 302);
  assert.equal(res.headers.get('location'), '/about');
  res = await edge('/lab/e?status=503&body=down');
  assert.equal(res.status, 503);
  assert.equal(await res.text(), 'down');
  res = await edge('/nope');
  assert.equal(res.status, 404);
});

test('WebSocket upgrades pass through to the origin echo', async () => {
  const ws = new WebSocket(stack.url.replace('http', 'ws') + '/ws/echo');
  const reply = await new Promise((resolve, reject) => {
    ws.on('open', () => ws.send('hello through the edge'));
    ws.on('message', (data) => resolve(data.toString()));
    ws.on('error', reject);
    setTimeout(() => reject(new Error('no websocket reply')), 5000);
  });
  ws.close();
  assert.equal(reply, 'hello through the edge');
});

test('the health endpoint reaches KV and the Durable Object (with the admin token)', async () => {
  const res = await edge('/__edgelayer/health', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.kv, 'ok');
  assert.equal(body.durable_object, 'ok');
});

test('an unreachable origin is a short 502, JSON or HTML by Accept', async () => {
  const down = await startEdge({ originUrl: `http://127.0.0.1:${await freePort()}` });
  try {
    let res = await fetch(down.url + '/api/tasks');
    assert.equal(res.status, 502);
    assert.deepEqual(await res.json(), { error: 'origin unreachable', status: 502 });
    res = await fetch(down.url + '/', { headers: { accept: 'text/html' } });
    assert.equal(res.status, 502);
    assert.match(await res.text(), /<h1>502<\/h1>/);
  } finally {
    await down.dispose();
  }
});

test('an invalid config answers 500 naming the field, not a crash', async () => {
  const bad = await startEdge({ originUrl: 'ftp://nope' });
  try {
    const res = await fetch(bad.url + '/', { headers: { accept: 'application/json' } });
    assert.equal(res.status, 500);
    assert.match((await res.json()).error, /ORIGIN_URL/);
  } finally {
    await bad.dispose();
  }
});
