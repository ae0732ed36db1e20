-- GET a path picked at random from $PATHS (one per line) with a bearer token picked at random
-- from $TOKENS (one per line), each request: a random report × a random tenant.
local tokens, paths = {}, {}

function init(args)
  for line in io.lines(os.getenv("TOKENS")) do tokens[#tokens + 1] = line end
  for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end

function request()
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  return wrk.format("GET", paths[math.random(#paths)], headers)
end
