-- wrk script: POST one prediction request (the body in $BODY_FILE). With $DELAY_MS set, each
-- connection waits that many milliseconds between requests (wrk 4 has no rate option; its timers
-- count whole milliseconds), so C connections send about C * 1000 / (DELAY_MS + latency)
-- requests per second; wrk's latency then excludes the wait.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BODY_FILE"), "r"))
wrk.body = f:read("*a")
f:close()
local pause = tonumber(os.getenv("DELAY_MS") or "0")
function delay()
  return pause
end
