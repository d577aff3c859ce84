-- wrk script: POST one JSON body (the file named by the first script argument) to the URL's path,
-- and count as failures every non-200 response and every 200 whose body holds "errors", by kind
-- (200 with errors, 503, other 5xx, 4xx). The summary is one line `BENCH_WRK {json}` on stdout.
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
  failed_errors = 0
  failed_503 = 0
  failed_5xx = 0
  failed_4xx = 0
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
    if status == 200 then
      failed_errors = failed_errors + 1
    elseif status == 503 then
      failed_503 = failed_503 + 1
    elseif status >= 500 then
      failed_5xx = failed_5xx + 1
    else
      failed_4xx = failed_4xx + 1
    end
  end
end

function done(summary, latency, requests)
  local total, failed, errors_200, s503, s5xx, s4xx = 0, 0, 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("responses")
    failed = failed + thread:get("failures")
    errors_200 = errors_200 + thread:get("failed_errors")
    s503 = s503 + thread:get("failed_503")
    s5xx = s5xx + thread:get("failed_5xx")
    s4xx = s4xx + thread:get("failed_4xx")
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_WRK {"requests":%d,"responses":%d,"failures":%d,"duration_us":%d,' ..
    '"failed_by":{"200 errors":%d,"503":%d,"5xx":%d,"4xx":%d},' ..
    '"socket_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, total, failed, summary.duration, errors_200, s503, s5xx, s4xx,
    errors.connect + errors.read + errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
