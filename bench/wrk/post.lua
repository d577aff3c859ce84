-- wrk script: POST one JSON body (the file named by the first script argument) to the URL's path,
-- and count as failures every non-200 response and every 200 whose body holds "errors".
-- The summary is one line `BENCH_WRK {json}` on stdout.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local body = file:read("*a")
  file:close()
  responses = 0
  failures = 0
  request_text = wrk.format("POST", wrk.path, {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json",
  }, body)
end

function request()
  return request_text
end

function response(status, headers, body)
  responses = responses + 1
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local total, failed = 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("responses")
    failed = failed + thread:get("failures")
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_WRK {"requests":%d,"responses":%d,"failures":%d,"duration_us":%d,' ..
    '"socket_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, total, failed, summary.duration,
    errors.connect + errors.read + errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
