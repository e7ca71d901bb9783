-- wrk script: POST prediction requests, the bodies taken in turn from $BODY_FILE (one JSON body
-- per line: different rows, as real traffic has, so neither server sees one row's path through
-- the trees, or one row repeated in its log). With $DELAY_MS set, each connection waits that
-- many milliseconds between requests (wrk 4 has no rate option; its timers count whole
-- milliseconds), so C connections send about C * 1000 / (DELAY_MS + latency) requests per
-- second; wrk's latency then excludes the wait.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {}
for line in io.lines(os.getenv("BODY_FILE")) do
  if #line > 0 then
    bodies[#bodies + 1] = line
  end
end
assert(#bodies > 0, "no request body in " .. os.getenv("BODY_FILE"))
-- Each request is formatted once, in init (which wrk calls after it has set the Host header):
-- wrk.format in request() cost wrk about 2 us of CPU per request (bench/serve_cpu.py), on the
-- cores it shares with the server.
local requests = {}
function init(args)
  for k, body in ipairs(bodies) do
    requests[k] = wrk.format(nil, nil, nil, body)
  end
end
local i = 0
function request()
  i = i % #requests + 1
  return requests[i]
end
local pause = tonumber(os.getenv("DELAY_MS") or "0")
if pause > 0 then
  function delay()
    return pause
  end
end
