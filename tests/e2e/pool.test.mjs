// The origin pool for real: two origin processes behind the worker; one is stopped mid-test
// and started again. Idempotent requests never fail, non-idempotent ones are never repeated,
// the breaker opens and later closes (cron health check), and with the lone origin down cached
// content is served stale and the rest gets 502 (a pool with every origin down answers 503 with
// Retry-After: reliability.test.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startOrigin, startEdge, wranglerConfig, freePort, ADMIN_TOKEN } from './harness.mjs';

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** The EDGELAYER table with fast breaker settings for tests. */
function fastPool(extra = {}) {
  const cfg = wranglerConfig().vars.EDGELAYER;
  return { ...cfg, pool: { ...cfg.pool, failures: 2, window: 10, open_for: 2, share_ttl: 1, timeout: 5, warm: [], ...extra } };
}

async function hits(origin, path) {
  const res = await fetch(`${origin.url}/_lab/hits?path=${encodeURIComponent(path)}`);
  return (await res.json()).hits ?? 0;
}

async function poolState(edge) {
  const res = await fetch(`${edge.url}/__edgelayer/metrics.json`, { headers: auth });
  assert.equal(res.status, 200);
  return Object.fromEntries((await res.json()).pool.map((o) => [o.url, o]));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('weights spread requests; a stopped origin costs no idempotent request; the breaker opens and closes', async () => {
  const a = await startOrigin();
  let b = await startOrigin();
  const edge = await startEdge({ originUrl: `${a.url} weight=3, ${b.url}`, vars: { EDGELAYER: fastPool() } });
  try {
    // Uncacheable, so each one goes to an origin.
    const spread = '/lab/pool-spread';
    for (let i = 0; i < 40; i++) {
      const res = await fetch(`${edge.url}${spread}?header=Cache-Control:no-store`);
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
    assert.deepEqual([await hits(a, spread), await hits(b, spread)], [30, 10], 'weight 3 : 1');

    await b.stop();
    const failover = '/lab/pool-failover';
    const statuses = [];
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${edge.url}${failover}?header=Cache-Control:no-store`);
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    assert.deepEqual([...new Set(statuses)], [200], 'every GET answered, retried on the live origin');
    assert.equal(await hits(a, failover), 30);
    let state = await poolState(edge);
    assert.equal(state[b.url].state, 'open', JSON.stringify(state[b.url]));
    assert.ok(state[b.url].opened >= 1);
    assert.equal(state[a.url].state, 'closed');

    // The origin comes back; after open_for, the cron's health check (a probe) closes it.
    b = await startOrigin({ port: b.port });
    await sleep(2100);
    const worker = await edge.mf.getWorker();
    await worker.scheduled({ cron: '* * * * *' });
    state = await poolState(edge);
    assert.equal(state[b.url].state, 'closed', JSON.stringify(state[b.url]));
    assert.equal(state[b.url].last_check.ok, true);
    const back = '/lab/pool-back';
    for (let i = 0; i < 8; i++) {
      const res = await fetch(`${edge.url}${back}?header=Cache-Control:no-store`);
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
    assert.ok((await hits(b, back)) >= 1, 'the restarted origin takes traffic again');
  } finally {
    await edge.dispose();
    await a.stop();
    await b.stop();
  }
});

test('a POST is sent once: never retried on another origin', async () => {
  const live = await startOrigin();
  // Nothing listens on the first origin; equal weights send the first request to it.
  const dead = `http://127.0.0.1:${await freePort()}`;
  const edge = await startEdge({ originUrl: `${dead}, ${live.url}`, vars: { EDGELAYER: fastPool({ failures: 5 }) } });
  try {
    const post = await fetch(`${edge.url}/api/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'once' }) });
    assert.equal(post.status, 502);
    const list = await (await fetch(`${live.url}/api/tasks`)).json();
    assert.equal(JSON.stringify(list).includes('"once"'), false, 'the live origin never saw the POST');
    // The same shape of request with GET goes to the dead origin first, then is retried.
    const get = await fetch(`${edge.url}/lab/pool-get-retry?header=Cache-Control:no-store`);
    assert.equal(get.status, 200);
    assert.match(get.headers.get('server-timing'), /origin;dur=/);
  } finally {
    await edge.dispose();
    await live.stop();
  }
});

test('the lone origin down: stale copies are served (stale-if-error), the rest gets 502 and it is never taken out', async () => {
  const origin = await startOrigin();
  const edge = await startEdge({ originUrl: origin.url, vars: { EDGELAYER: fastPool() } });
  let back;
  try {
    const cached = '/lab/pool-stale?header=Cache-Control:max-age%3D1,%20stale-if-error%3D600';
    const first = await fetch(edge.url + cached);
    assert.equal(first.status, 200);
    const body = await first.text();
    await origin.stop();
    await sleep(1100);
    // Failures that would open a breaker in a pool of two (a lone origin has nowhere else to go).
    for (let i = 0; i < 2; i++) await (await fetch(`${edge.url}/lab/pool-down-${i}`)).arrayBuffer();
    const stale = await fetch(edge.url + cached);
    assert.equal(stale.status, 200);
    assert.equal(stale.headers.get('x-cache'), 'STALE');
    assert.equal(await stale.text(), body);
    const down = await fetch(`${edge.url}/lab/pool-uncached`, { headers: { accept: 'application/json' } });
    assert.equal(down.status, 502);
    assert.deepEqual(await down.json(), { error: 'origin unreachable', status: 502 });
    assert.equal((await poolState(edge))[origin.url].state, 'closed', 'never marked down');
    back = await startOrigin({ port: origin.port });
    const res = await fetch(`${edge.url}/lab/pool-back-at-once`);
    assert.equal(res.status, 200, 'served the moment it is back: no open breaker to wait out');
  } finally {
    await edge.dispose();
    await back?.stop();
  }
});
