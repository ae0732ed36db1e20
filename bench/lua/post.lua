-- POST a new activations row (unique product type) with the write token in $WRITE_TOKEN.
local token = os.getenv("WRITE_TOKEN")
local path = os.getenv("WRK_PATH")
local counter = 0
local prefix = ""

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  prefix = tostring(math.random(1, 2000000000))
end

function request()
  counter = counter + 1
  local body = '{"reportRefreshDate":"2025-01-01","productType":"BENCH ' .. prefix .. "-" .. counter ..
    '","assigned":10,"activated":8,"sharedComputerActivation":0}'
  return wrk.format("POST", path, {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end
