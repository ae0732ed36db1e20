-- PATCH one row with If-Match: * and the write token in $WRITE_TOKEN.
local token = os.getenv("WRITE_TOKEN")
local path = os.getenv("WRK_PATH")

function request()
  local body = '{"assigned":' .. math.random(1, 100000) .. '}'
  return wrk.format("PATCH", path, {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json", ["If-Match"] = "*"}, body)
end
