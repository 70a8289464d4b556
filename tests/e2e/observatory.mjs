// The MDN HTTP Observatory's header tests, on one response's headers: the same expectations and
// modifiers as its analyzer and score table (mdn/mdn-http-observatory, src/analyzer/tests and
// src/grader/charts.js), for the tests that read headers only: CSP, X-Frame-Options, HSTS,
// X-Content-Type-Options, Referrer-Policy, Cross-Origin-Resource-Policy and cookies.
// Redirection and Subresource Integrity need a whole-site scan and score 0 here (the demo's
// pages load only same-origin scripts, which the Observatory scores 0 as well).

const BROAD = new Set(['ftp:', 'http:', 'https:', '*', 'http://*', 'http://*.*', 'https://*', 'https://*.*']);
const UNSAFE_INLINE = new Set(["'unsafe-inline'", 'data:']);
const broadOrInline = (s) => BROAD.has(s) || UNSAFE_INLINE.has(s);
const NONCE_HASH = ["'sha256-", "'sha384-", "'sha512-", "'nonce-"];

function parseCsp(value) {
  const csp = new Map();
  for (const directive of value.split(/[;,]/)) {
    const [name, ...sources] = directive.trim().split(/\s+/);
    if (!name) continue;
    const key = name.toLowerCase();
    if (!csp.has(key)) csp.set(key, new Set(sources.map((s) => (s.startsWith("'") ? s.toLowerCase() : s))));
  }
  return csp;
}

function cspTest(h, https) {
  const value = h.get('content-security-policy');
  if (!value) return { result: 'csp-not-implemented', modifier: -25 };
  const csp = parseCsp(value);
  const get = (...names) => new Set(names.map((n) => csp.get(n)).find(Boolean) ?? ['*']);
  const scriptSrc = get('script-src', 'default-src');
  const styleSrc = get('style-src', 'default-src');
  const objectSrc = get('object-src', 'default-src');
  for (const list of [scriptSrc, styleSrc]) {
    if ([...list].some((s) => NONCE_HASH.some((p) => s.startsWith(p)))) list.delete("'unsafe-inline'");
  }
  const active = [...csp.entries()].filter(([d]) => !['img-src', 'media-src', 'script-src'].includes(d)).flatMap(([, s]) => [...s]).concat([...scriptSrc]);
  let result;
  if ([...scriptSrc].some(broadOrInline) || [...objectSrc].some((s) => BROAD.has(s))) result = ['csp-implemented-with-unsafe-inline', -20];
  else if (https && active.some((s) => s.startsWith('http:') || s.startsWith('ftp:'))) result = ['csp-implemented-with-insecure-scheme', -20];
  else if (new Set([...scriptSrc, ...styleSrc]).has("'unsafe-eval'")) result = ['csp-implemented-with-unsafe-eval', -10];
  else if ([...styleSrc].some(broadOrInline)) result = ['csp-implemented-with-unsafe-inline-in-style-src-only', 0];
  else if (csp.get('default-src')?.has("'none'") && csp.get('default-src').size === 1) result = ['csp-implemented-with-no-unsafe-default-src-none', 10];
  else result = ['csp-implemented-with-no-unsafe', 5];
  return { result: result[0], modifier: result[1], frameAncestors: csp.has('frame-ancestors') };
}

function xfoTest(h, csp) {
  if (csp.frameAncestors) return { result: 'x-frame-options-implemented-via-csp', modifier: 5 };
  const xfo = h.get('x-frame-options')?.trim().toLowerCase();
  if (!xfo) return { result: 'x-frame-options-not-implemented', modifier: -20 };
  if (xfo === 'deny' || xfo === 'sameorigin') return { result: 'x-frame-options-sameorigin-or-deny', modifier: 0 };
  if (xfo.startsWith('allow-from')) return { result: 'x-frame-options-allow-from-origin', modifier: 0 };
  return { result: 'x-frame-options-header-invalid', modifier: -20 };
}

function hstsTest(h, https) {
  if (!https) return { result: 'hsts-not-implemented-no-https', modifier: -20 };
  const value = h.get('strict-transport-security');
  if (!value) return { result: 'hsts-not-implemented', modifier: -20 };
  const maxAge = /max-age\s*=\s*"?(\d+)"?/i.exec(value);
  if (!maxAge) return { result: 'hsts-header-invalid', modifier: -20 };
  return Number(maxAge[1]) >= 15768000 ? { result: 'hsts-implemented-max-age-at-least-six-months', modifier: 0 } : { result: 'hsts-implemented-max-age-less-than-six-months', modifier: -10 };
}

function nosniffTest(h) {
  const v = h.get('x-content-type-options');
  if (!v) return { result: 'x-content-type-options-not-implemented', modifier: -5 };
  return v.trim().toLowerCase() === 'nosniff' ? { result: 'x-content-type-options-nosniff', modifier: 0 } : { result: 'x-content-type-options-header-invalid', modifier: -5 };
}

function referrerTest(h) {
  const v = h.get('referrer-policy');
  if (!v) return { result: 'referrer-policy-not-implemented', modifier: 0 };
  // The last policy a browser understands wins.
  const last = v.split(',').map((p) => p.trim().toLowerCase()).filter(Boolean).at(-1);
  if (['no-referrer', 'same-origin', 'strict-origin', 'strict-origin-when-cross-origin'].includes(last)) return { result: 'referrer-policy-private', modifier: 5 };
  if (['origin', 'origin-when-cross-origin', 'unsafe-url', 'no-referrer-when-downgrade'].includes(last)) return { result: 'referrer-policy-unsafe', modifier: -5 };
  return { result: 'referrer-policy-header-invalid', modifier: -5 };
}

function corpTest(h) {
  const v = h.get('cross-origin-resource-policy')?.trim().toLowerCase();
  if (!v) return { result: 'cross-origin-resource-policy-not-implemented', modifier: 0 };
  if (v === 'same-site') return { result: 'cross-origin-resource-policy-implemented-with-same-site', modifier: 10 };
  if (v === 'same-origin') return { result: 'cross-origin-resource-policy-implemented-with-same-origin', modifier: 10 };
  if (v === 'cross-origin') return { result: 'cross-origin-resource-policy-implemented-with-cross-origin', modifier: 0 };
  return { result: 'cross-origin-resource-policy-header-invalid', modifier: -5 };
}

function cookiesTest(h, https) {
  const cookies = h.getSetCookie?.() ?? [];
  if (cookies.length === 0) return { result: 'cookies-not-found', modifier: 0 };
  const attrs = cookies.map((c) => c.toLowerCase());
  const hsts = https && h.has('strict-transport-security');
  if (attrs.some((c) => !/;\s*secure/.test(c))) return hsts ? { result: 'cookies-without-secure-flag-but-protected-by-hsts', modifier: -5 } : { result: 'cookies-without-secure-flag', modifier: -20 };
  if (attrs.every((c) => /;\s*samesite=(strict|lax)/.test(c))) return { result: 'cookies-secure-with-httponly-sessions-and-samesite', modifier: 5 };
  return { result: 'cookies-secure-with-httponly-sessions', modifier: 0 };
}

const GRADES = [[100, 'A+'], [90, 'A'], [85, 'A-'], [80, 'B+'], [70, 'B'], [65, 'B-'], [60, 'C+'], [50, 'C'], [45, 'C-'], [40, 'D+'], [30, 'D'], [25, 'D-'], [0, 'F']];

/**
 * Grades one response's `Headers` as the Observatory would a site answering with them.
 * `https`: the response came over HTTPS. Penalties first; bonuses count only from 90 up.
 */
export function grade(headers, { https = true } = {}) {
  const csp = cspTest(headers, https);
  const tests = {
    'content-security-policy': csp,
    'x-frame-options': xfoTest(headers, csp),
    'strict-transport-security': hstsTest(headers, https),
    'x-content-type-options': nosniffTest(headers),
    'referrer-policy': referrerTest(headers),
    'cross-origin-resource-policy': corpTest(headers),
    cookies: cookiesTest(headers, https),
  };
  const modifiers = Object.values(tests).map((t) => t.modifier);
  let score = 100 + modifiers.filter((m) => m < 0).reduce((a, b) => a + b, 0);
  if (score >= 90) score += modifiers.filter((m) => m > 0).reduce((a, b) => a + b, 0);
  score = Math.max(0, score);
  return { score, grade: GRADES.find(([min]) => score >= min)[1], tests: Object.fromEntries(Object.entries(tests).map(([k, t]) => [k, `${t.result} (${t.modifier >= 0 ? '+' : ''}${t.modifier})`])) };
}
