-- A mixed read/write load for bench/citus.sh. Each request picks a tenant at random from $TOKENS
-- (lines "<tenant index> <token with Reports.ReadWrite.All>") and is, by turns:
--   * the report function's beta JSON (office365ActiveUserCounts, period D7),
--   * an entity-set $filter on reportDate with $top=10,
--   * the activations report function's CSV (?redirect=false),
--   * a POST of a new office365ActivationsUserCounts row whose productType is unique and names
--     its tenant ("BENCH <tenant index> <thread>-<counter>").
-- Every answer to a POST is written to $ACKS.<thread> as "<status> <tenant index> <id> <productType>"
-- (id and productType from the 201's body; "-" otherwise), so that the acknowledged writes can
-- be checked row by row afterwards. $WRITE_EVERY (default 4): one request in that many is a POST.
local tokens, tenants = {}, {}
local counter, thread_id = 0, 0
local acks
local write_every = tonumber(os.getenv("WRITE_EVERY") or "4")
local threads = {}
local since = os.getenv("SINCE") or "2025-01-01"

function setup(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  for line in io.lines(os.getenv("TOKENS")) do
    local index, token = line:match("^(%S+) (%S+)$")
    tenants[#tenants + 1] = index
    tokens[#tokens + 1] = token
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  thread_id = tostring(id) .. "-" .. tostring(math.random(1, 2000000000))
  acks = io.open(os.getenv("ACKS") .. "." .. thread_id, "w")
  acks:setvbuf("line")
end

function request()
  counter = counter + 1
  local pick = math.random(#tokens)
  local headers = {}
  headers["Authorization"] = "Bearer " .. tokens[pick]
  local kind = counter % write_every
  if kind == 0 then
    headers["Content-Type"] = "application/json"
    -- An old refresh date: the rows stay out of the report function's answer (latest refresh),
    -- so reads cost the same from the first minute to the last.
    local body = '{"reportRefreshDate":"2020-01-01","productType":"BENCH ' .. tenants[pick] .. " "
      .. thread_id .. "-" .. counter .. '","assigned":' .. counter .. ',"activated":8,"sharedComputerActivation":0}'
    return wrk.format("POST", "/v1.0/reports/office365ActivationsUserCounts", headers, body)
  elseif kind == 1 then
    return wrk.format("GET", "/beta/reports/getOffice365ActiveUserCounts(period='D7')?$format=application/json", headers)
  elseif kind == 2 then
    return wrk.format("GET", "/v1.0/reports/office365ActiveUserCounts?$filter=reportDate%20ge%20" .. since .. "&$top=10", headers)
  else
    return wrk.format("GET", "/v1.0/reports/getOffice365ActivationsUserCounts()?redirect=false", headers)
  end
end

function response(status, headers, body)
  local product = body:match('"productType":"(BENCH [^"]*)"')
  if product ~= nil or status >= 300 then
    local tenant = product and product:match("^BENCH (%S+) ") or "-"
    local id = body:match('"id":"([^"]*)"') or "-"
    acks:write(status .. " " .. tenant .. " " .. id .. " " .. (product or "-"):gsub(" ", "_") .. "\n")
  end
end
