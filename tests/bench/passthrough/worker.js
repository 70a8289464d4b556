// The baseline: a plain JS passthrough worker (what every edge layer is compared against).
export default {
  fetch(request, env) {
    const url = new URL(request.url);
    return fetch(env.ORIGIN_URL + url.pathname + url.search, request);
  },
};
