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
  test(`${path} has no CSP violations in Chromium`, { skip: !CHROMIUM && 'Chromium not installed (apt-get install chromium)' }, async () => {
    const { dom, console: lines } = await chromium(['--dump-dom', stack.url + path]);
    const violations = lines.filter((l) => /Content Security Policy|Refused to/.test(l));
    assert.deepEqual(violations, [], violations.join('\n'));
    assert.match(dom, /<\/html>/);
    if (path === '/') assert.match(dom, /<html[^>]*data-rendered="edge"/, 'the inline script ran under the CSP');
    if (path === '/tasks') assert.match(dom, /id="task-status"[^>]*>\d+ task\(s\)</, 'app.js rendered the list from /api/tasks');
  });
}
