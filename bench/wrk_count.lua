-- wrk_count.lua: bench/cpu-per-request.sh's Connect JSON calls over
-- HTTP/1.1 keep-alive: like wrk_connect.lua, but after SENTRA_COUNT
-- answers the thread stops and writes the number of answers other than
-- 200 into the file SENTRA_DONE, so that a run serves a known number of
-- requests (wrk itself only knows durations, and its main thread sleeps
-- for all of it: the script then ends wrk with SIGINT). Run it with one
-- thread (-t 1).
--
--   SENTRA_TOKEN  the bearer token
--   SENTRA_PATH   the procedure, "/sentra.v1.SentraService/GetSentra"
--   SENTRA_BODY   the JSON request message
--   SENTRA_COUNT  answers after which the thread stops
--   SENTRA_DONE   the file written then
local count = tonumber(os.getenv("SENTRA_COUNT") or "1000")
local done = os.getenv("SENTRA_DONE")
local seen, failed = 0, 0

wrk.method = "POST"
wrk.path = os.getenv("SENTRA_PATH")
wrk.body = os.getenv("SENTRA_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("SENTRA_TOKEN")

response = function(status, headers, body)
  seen = seen + 1
  if status ~= 200 then
    failed = failed + 1
  end
  if seen == count then
    wrk.thread:stop()
    local f = io.open(done, "w")
    f:write(failed, "\n")
    f:close()
  end
end
