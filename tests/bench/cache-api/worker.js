// The hit baseline: a plain JS worker that serves from `caches.default` and fills it from the
// origin (what a hand-written caching worker does), for `npm run bench:cache`.
export default {
  async fetch(request, env, ctx) {
    const cache = caches.default;
    const hit = await cache.match(request);
    if (hit) return hit;
    const url = new URL(request.url);
    const res = await fetch(env.ORIGIN_URL + url.pathname + url.search, request);
    if (res.ok) ctx.waitUntil(cache.put(request, res.clone()));
    return res;
  },
};
