-- A mixed read load in which (almost) every request has a query string never seen before:
-- the report function's JSON with distinct $top/$skip and unknown parameters, its CSV with
-- unknown parameters, and entity-set $filter queries with distinct literals. Tokens are picked
-- at random from $TOKENS (one per line). What it checks: that no cache grows with the number
-- of distinct query strings.
local tokens = {}
local counter = 0

function init(args)
  for line in io.lines(os.getenv("TOKENS")) do tokens[#tokens + 1] = line end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  counter = math.random(1, 1000000000)
end

function request()
  counter = counter + 1
  local headers = {}
  headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  local kind = counter % 4
  local path
  if kind == 0 then
    path = "/beta/reports/getOffice365ActiveUserCounts(period='D7')?$format=application/json&$top="
      .. (counter % 997) .. "&unused" .. counter .. "=1"
  elseif kind == 1 then
    path = "/beta/reports/getOffice365ActiveUserCounts(period='D7')?$format=application/json&$skip="
      .. (counter % 5) .. "&$top=" .. (counter % 13) .. "&x=" .. counter
  elseif kind == 2 then
    path = "/v1.0/reports/getOffice365ActiveUserCounts(period='D30')?redirect=false&cachebuster=" .. counter
  else
    path = "/v1.0/reports/office365ActiveUserCounts?$filter=teams%20gt%20" .. (counter % 100000)
      .. "&$top=" .. (counter % 50 + 1)
  end
  return wrk.format("GET", path, headers)
end
