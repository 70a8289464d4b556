// The demo pages in a real browser (Debian's Chromium, headless) under the default CSP: no CSP
// violations on the console, the inline script runs (with its nonce) and the tasks page renders
// from the API. `.ci/setup` installs Chromium when it can (root + apt); otherwise this skips.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack } from './harness.mjs';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
let stack;
before(async () => {
  if (CHROMIUM) stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

function chromium(url) {
  const profile = mkdtempSync(join(tmpdir(), 'edgelayer-chromium-'));
  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--enable-logging=stderr', '--v=0',
    '--virtual-time-budget=5000', '--dump-dom', url,
  ];
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM, args, { timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      rmSync(profile, { recursive: true, force: true });
      if (err && !stdout) reject(err);
      else resolve({ dom: stdout, console: stderr.split('\n').filter((l) => l.includes('CONSOLE') || /Content Security Policy|Refused to/.test(l)) });
    });
  });
}

for (const path of ['/', '/tasks', '/about']) {
  test(`${path} has no CSP violations in Chromium`, { skip: !CHROMIUM && 'Chromium not installed (apt-get install chromium)' }, async () => {
    const { dom, console: lines } = await chromium(stack.url + path);
    const violations = lines.filter((l) => /Content Security Policy|Refused to/.test(l));
    assert.deepEqual(violations, [], violations.join('\n'));
    assert.match(dom, /<\/html>/);
    if (path === '/') assert.match(dom, /<html[^>]*data-rendered="edge"/, 'the inline script ran under the CSP');
    if (path === '/tasks') assert.match(dom, /id="task-status"[^>]*>\d+ task\(s\)</, 'app.js rendered the list from /api/tasks');
  });
}
