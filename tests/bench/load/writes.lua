-- wrk script: the write side of the mixed workload (POST /api/tasks, which invalidates the
-- cached API GETs). Counts statuses; `done` prints one JSON line.
threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  status_counts = {}
  first_error = ""
end

function request()
  n = n + 1
  return wrk.format("POST", "/api/tasks", { ["Content-Type"] = "application/json" }, string.format('{"title":"load %d"}', n))
end

function response(status, headers, body)
  local s = tostring(status)
  status_counts[s] = (status_counts[s] or 0) + 1
  if status >= 500 and first_error == "" then first_error = s .. " " .. body:sub(1, 120) end
end

function done(summary, latency, requests)
  local status = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("status_counts") or {}) do status[k] = (status[k] or 0) + v end
    local e = t:get("first_error")
    if e and e ~= "" then io.write("first write error: " .. e .. "\n") end
  end
  local parts = {}
  for k, v in pairs(status) do table.insert(parts, string.format('"%s":%d', k, v)) end
  io.write(string.format('RESULT {"requests":%d,"seconds":%.3f,"p50":%.3f,"p95":%.3f,"p99":%.3f,"socket_errors":%d,"status":{%s},"cache":{}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, table.concat(parts, ",")))
end
