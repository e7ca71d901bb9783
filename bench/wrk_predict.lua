-- wrk script: POST one prediction request (the body in $BODY_FILE). With $RATE and $CONNS set,
-- each connection waits CONNS/RATE seconds between requests, so the total is about RATE per
-- second (wrk 4 has no rate option; its latency then excludes the wait).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BODY_FILE"), "r"))
wrk.body = f:read("*a")
f:close()
local rate = tonumber(os.getenv("RATE") or "0")
local conns = tonumber(os.getenv("CONNS") or "1")
function delay()
  if rate > 0 then
    return conns * 1000 / rate
  end
  return 0
end
