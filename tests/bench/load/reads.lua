-- wrk script: the read side of the mixed workload. Each thread walks a fixed, weighted cycle of
-- URLs (HTML pages, hashed static files, API GETs, images with a browser's Accept), counts
-- responses by status and X-Cache, and `done` prints one JSON line.
local cycle = {
  -- 35 % HTML
  {"/", 10}, {"/about", 8}, {"/tasks", 7}, {"/?utm_source=load", 5}, {"/missing-page", 5},
  -- 25 % static
  {"/static/app.e33b2218.css", 13}, {"/static/app.4f3923cd.js", 12},
  -- 25 % API GETs
  {"/api/tasks", 15}, {"/api/tasks?done=false", 10},
  -- 15 % images (AVIF/WebP negotiated from Accept)
  {"/img/chelsea.jpg", 6}, {"/cdn-cgi/image/width=640/img/coffee.jpg", 6}, {"/img/badge.png", 3},
}
local requests = {}

threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local headers = { ["Accept"] = "image/avif,image/webp,image/apng,text/html,application/json;q=0.9,*/*;q=0.8", ["Accept-Encoding"] = "br, gzip" }
  for _, entry in ipairs(cycle) do
    for _ = 1, entry[2] do
      table.insert(requests, wrk.format("GET", entry[1], headers))
    end
  end
  -- Interleave the classes: a fixed shuffle, different per thread.
  math.randomseed(#requests + (tonumber(args[1]) or 0))
  for i = #requests, 2, -1 do
    local j = math.random(i)
    requests[i], requests[j] = requests[j], requests[i]
  end
  next_request = 0
  status_counts = {}
  cache_counts = {}
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function response(status, headers, body)
  local s = tostring(status)
  status_counts[s] = (status_counts[s] or 0) + 1
  local c = headers["x-cache"] or headers["X-Cache"] or "NONE"
  cache_counts[c] = (cache_counts[c] or 0) + 1
end

local function encode(t)
  local parts = {}
  for k, v in pairs(t) do table.insert(parts, string.format('"%s":%d', k, v)) end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local status, cache = {}, {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("status_counts") or {}) do status[k] = (status[k] or 0) + v end
    for k, v in pairs(t:get("cache_counts") or {}) do cache[k] = (cache[k] or 0) + v end
  end
  io.write(string.format('RESULT {"requests":%d,"seconds":%.3f,"p50":%.3f,"p95":%.3f,"p99":%.3f,"socket_errors":%d,"status":%s,"cache":%s}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, encode(status), encode(cache)))
end
