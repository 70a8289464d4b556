// edgelayer dashboard: reads /__edgelayer/metrics.json (same origin; the browser resends the
// Basic credentials it was given for the page) every 10 s and draws the last hour as SVG.
// No libraries: the page is served by the worker under a strict CSP.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const W = 480;
const H = 180;
const PAD = { l: 50, r: 8, t: 8, b: 20 };

function el(name, attrs = {}, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

const fmt = {
  rps: (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(v >= 1 ? 1 : 2)),
  secs: (v) => (v >= 1 ? `${v.toFixed(2)} s` : `${(v * 1000).toFixed(v < 0.01 ? 1 : 0)} ms`),
  pct: (v) => `${(v * 100).toFixed(v < 0.1 ? 1 : 0)} %`,
  bytes: (v) => {
    const [n, unit] = v >= 1 << 20 ? [v / (1 << 20), 'MB'] : v >= 1024 ? [v / 1024, 'KB'] : [v, 'B'];
    return `${n.toFixed(n >= 100 || unit === 'B' ? 0 : 1)} ${unit}`;
  },
  count: (v) => (v < 10 && v % 1 ? v.toFixed(1) : v.toFixed(0)),
};

/**
 * Draws line series on one SVG: `series` = [{ values: (number|null)[], color }], nulls leave
 * gaps, and a point without neighbours is drawn as a dot. `threshold` draws a dashed line (with
 * `fitData`, only when it is within the data's scale; else a note says where it is); `yMax`
 * fixes the scale (else the data's maximum).
 */
function lineChart(svg, times, series, { format, threshold, yMax, area, fitData } = {}) {
  svg.replaceChildren();
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const values = series.flatMap((s) => s.values).filter((v) => v != null);
  const scaleThreshold = fitData ? 0 : threshold ?? 0;
  let max = yMax ?? Math.max(0, ...values, scaleThreshold) * 1.15;
  if (!(max > 0)) max = 1;
  const x = (i) => PAD.l + (i / Math.max(1, times.length - 1)) * (W - PAD.l - PAD.r);
  const y = (v) => H - PAD.b - (v / max) * (H - PAD.t - PAD.b);
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    el('line', { class: 'grid-line', x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v) }, svg);
    el('text', { x: PAD.l - 4, y: y(v) + 3, 'text-anchor': 'end' }, svg).textContent = format(v);
  }
  for (let i = 0; i < times.length; i += 10) {
    const d = new Date(times[i]);
    const label = `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
    el('text', { x: x(i), y: H - 5, 'text-anchor': 'middle' }, svg).textContent = label;
  }
  if (threshold != null && threshold <= max) {
    el('line', { class: 'threshold', x1: PAD.l, x2: W - PAD.r, y1: y(threshold), y2: y(threshold) }, svg);
  } else if (threshold != null) {
    el('text', { class: 'threshold-note', x: W - PAD.r, y: PAD.t + 8, 'text-anchor': 'end' }, svg).textContent = `threshold ${format(threshold)} ↑`;
  }
  for (const s of series) {
    let d = '';
    let pen = false;
    let points = 0;
    s.values.forEach((v, i) => {
      if (v == null) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
      points++;
    });
    if (!points) continue;
    if (area) {
      el('path', { class: 'area', d: `${d}L${x(times.length - 1)},${y(0)}L${x(0)},${y(0)}Z`, fill: s.color }, svg);
    }
    el('path', { class: 'series', d, stroke: s.color, 'data-points': points }, svg);
    s.values.forEach((v, i) => {
      if (v != null && s.values[i - 1] == null && s.values[i + 1] == null) el('circle', { cx: x(i), cy: y(v), r: 2.5, fill: s.color }, svg);
    });
  }
}

function tile(label, value, bad) {
  const div = document.createElement('div');
  div.className = `tile${bad ? ' bad' : ''}`;
  div.innerHTML = '<div class="label"></div><div class="value"></div>';
  div.querySelector('.label').textContent = label;
  div.querySelector('.value').textContent = value;
  return div;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    if (c instanceof Node) td.appendChild(c);
    else td.textContent = c;
    tr.appendChild(td);
  }
  return tr;
}

function render(data) {
  const series = data.series;
  const times = series.map((p) => p.t);
  const color = getComputedStyle(document.documentElement);
  const c = (name) => color.getPropertyValue(name).trim();
  const t = data.thresholds;

  lineChart(document.getElementById('chart-rps'), times, [{ values: series.map((p) => p.rps), color: c('--a') }], { format: fmt.rps, area: true });
  lineChart(
    document.getElementById('chart-latency'),
    times,
    [
      { values: series.map((p) => p.p50), color: c('--a') },
      { values: series.map((p) => p.p95), color: c('--c') },
      { values: series.map((p) => p.p99), color: c('--b') },
    ],
    { format: fmt.secs, threshold: t.p95_seconds, fitData: true },
  );
  lineChart(document.getElementById('chart-hit'), times, [{ values: series.map((p) => p.hit_ratio), color: c('--ok') }], { format: fmt.pct, threshold: t.hit_ratio, yMax: 1 });
  lineChart(document.getElementById('chart-errors'), times, [{ values: series.map((p) => (p.requests ? p.error_rate : null)), color: c('--bad') }], { format: fmt.pct, threshold: t.error_rate });
  lineChart(document.getElementById('chart-saved'), times, [{ values: series.map((p) => p.bytes_saved), color: c('--b') }], { format: fmt.bytes, area: true });
  lineChart(document.getElementById('chart-limited'), times, [{ values: series.map((p) => p.limited), color: c('--warn') }], { format: fmt.count, area: true });

  const hour = data.last_hour;
  const alerts = Object.fromEntries(data.alerts.map((a) => [a.name, a]));
  const last = series[series.length - 1];
  document.getElementById('tiles').replaceChildren(
    tile('req/s (this minute)', fmt.rps(last.rps)),
    tile('p95, last 5 min', alerts.p95_latency.value == null ? '–' : fmt.secs(alerts.p95_latency.value), alerts.p95_latency.firing),
    tile('hit ratio, last 5 min', alerts.hit_ratio.value == null ? '–' : fmt.pct(alerts.hit_ratio.value), alerts.hit_ratio.firing),
    tile('error rate, last 5 min', alerts.error_rate.value == null ? '–' : fmt.pct(alerts.error_rate.value), alerts.error_rate.firing),
    tile('bytes saved, last hour', fmt.bytes(hour.bytes_saved)),
    tile('429s, last hour', fmt.count(hour.limited)),
  );

  const names = { p95_latency: 'p95 latency', error_rate: 'error rate', hit_ratio: 'hit ratio' };
  const shown = {
    p95_latency: (v) => fmt.secs(v),
    error_rate: (v) => fmt.pct(v),
    hit_ratio: (v) => fmt.pct(v),
  };
  document.getElementById('alerts').replaceChildren(
    ...data.alerts.map((a) => {
      const div = document.createElement('div');
      const state = a.firing == null ? 'idle' : a.firing ? 'firing' : 'ok';
      div.className = `alert ${state}`;
      div.dataset.alert = a.name;
      div.dataset.state = state;
      const limit = `${a.fires_when} ${shown[a.name](a.threshold)}`;
      div.textContent =
        state === 'idle' ? `${names[a.name]}: not enough requests (alerts when ${limit})` : `${names[a.name]} ${state === 'firing' ? 'FIRING' : 'ok'}: ${shown[a.name](a.value)} (alerts when ${limit})`;
      return div;
    }),
  );

  const pool = document.querySelector('#pool tbody');
  pool.replaceChildren(
    ...(data.pool ?? []).map((o) => {
      const badge = document.createElement('span');
      badge.className = `badge ${o.state}`;
      badge.textContent = o.state.replace('_', '-');
      const check = o.last_check ? `${o.last_check.ok ? 'passed' : 'failed'} (${o.last_check.detail}, ${o.last_check.ms.toFixed(0)} ms) at ${new Date(o.last_check.at).toLocaleTimeString()}` : 'none yet';
      return row([o.url, badge, check, String(o.opened)]);
    }),
  );

  const rules = document.querySelector('#rules tbody');
  rules.replaceChildren(
    ...Object.entries(data.rules).map(([name, s]) =>
      row([name, String(s.requests), s.hit_ratio == null ? '–' : fmt.pct(s.hit_ratio), s.p95 == null ? '–' : fmt.secs(s.p95), String(s.errors), fmt.bytes(s.bytes_saved), String(s.limited)]),
    ),
  );
  document.getElementById('updated').textContent = `updated ${new Date(data.generated_at).toLocaleTimeString()} · last hour, per minute`;
  document.body.dataset.rendered = 'true';
}

async function refresh() {
  try {
    // From the origin, not the page URL: a page opened as http://user:token@host/ would pass
    // its credentials on to a relative URL, which fetch refuses. The browser still sends the
    // Basic credentials it holds for this origin.
    const res = await fetch(`${location.origin}/__edgelayer/metrics.json`, { credentials: 'same-origin', cache: 'no-store' });
    if (!res.ok) throw new Error(`metrics.json answered ${res.status}`);
    render(await res.json());
  } catch (e) {
    document.getElementById('updated').textContent = `could not load metrics: ${e.message}`;
  }
}

refresh();
setInterval(refresh, 10000);
