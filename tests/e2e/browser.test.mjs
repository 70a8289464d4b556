// The demo pages in a real browser (Debian's Chromium, headless) under the default CSP: no CSP
// violations on the console, the inline script runs (with its nonce) and the tasks page renders
// from the API. `.ci/setup` installs Chromium when it can (root + apt); otherwise this skips.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, chromium, CHROMIUM } from './harness.mjs';

let stack;
before(async () => {
  if (CHROMIUM) stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

for (const path of ['/', '/tasks', '/about']) {
  test(`${path} has no CSP violations in Chromium, under the strict page CSP of a cache hit`, { skip: !CHROMIUM && 'Chromium not installed (apt-get install chromium)' }, async () => {
    // Served from cache, the page carries the strict CSP (no 'unsafe-inline' in style-src).
    let csp = '';
    for (let i = 0; i < 50 && !csp.startsWith("default-src 'none'"); i++) {
      const res = await fetch(stack.url + path);
      await res.arrayBuffer();
      csp = res.headers.get('content-security-policy') ?? '';
      if (!csp.startsWith("default-src 'none'")) await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(csp, /^default-src 'none';.*style-src 'self' 'nonce-/, 'the cached page is served with the strict CSP');
    const { dom, console: lines } = await chromium(['--dump-dom', stack.url + path]);
    const violations = lines.filter((l) => /Content Security Policy|Refused to/.test(l));
    assert.deepEqual(violations, [], violations.join('\n'));
    assert.match(dom, /<\/html>/);
    if (path === '/') assert.match(dom, /<html[^>]*data-rendered="edge"/, 'the inline script ran under the CSP');
    if (path === '/tasks') assert.match(dom, /id="task-status"[^>]*>\d+ task\(s\)</, 'app.js rendered the list from /api/tasks');
  });
}
