-- wrk_connect.lua: Connect unary calls in JSON over HTTP/1.1 keep-alive,
-- for `make bench` (bench/run.sh). One POST per request:
--
--   SENTRA_TOKEN  the bearer token
--   SENTRA_PATH   the procedure, "/sentra.v1.StatsService/GetStatistics"
--   SENTRA_BODY   the JSON request message, or
--   SENTRA_IDS    a file of sentra ids, one a line: GetSentra of a random
--                 one each time (as loadgen -w get does)
--
-- Answers other than 200 are counted by wrk as "Non-2xx or 3xx responses".
local ids = {}
local path = os.getenv("SENTRA_PATH")
local body = os.getenv("SENTRA_BODY") or "{}"
local idfile = os.getenv("SENTRA_IDS")
if idfile ~= nil and idfile ~= "" then
  for line in io.lines(idfile) do
    if line ~= "" then ids[#ids + 1] = line end
  end
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("SENTRA_TOKEN")

request = function()
  if #ids > 0 then
    local id = ids[math.random(#ids)]
    return wrk.format(nil, path, nil, '{"id":"' .. id .. '"}')
  end
  return wrk.format(nil, path, nil, body)
end
