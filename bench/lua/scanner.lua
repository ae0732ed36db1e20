-- GET $WRK_PATH as a client that honours Retry-After: after a refused request (429/503) its
-- thread waits the seconds the server asked for before the next one.
local path = os.getenv("WRK_PATH")
local wait = 0

function request()
  return wrk.format("GET", path)
end

function delay()
  local w = wait
  wait = 0
  return w
end

function response(status, headers, body)
  if status == 429 or status == 503 then
    local after = headers["retry-after"] or headers["Retry-After"] or "1"
    wait = 1000 * (tonumber(after) or 1)
  end
end
