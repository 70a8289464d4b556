// The ceiling: a JS worker that answers from memory with no I/O at all. No caching worker can
// beat it; `npm run bench:cache` reports it so the other ratios can be read against it.
const body = 'x'.repeat(1500);
export default {
  fetch() {
    return new Response(body, { headers: { 'content-type': 'text/css' } });
  },
};
