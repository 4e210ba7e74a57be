-- wrk script for `deno task bench`: N pipelined GET / per write (N from the args).
local depth = 16
function init(args)
  depth = tonumber(args[1] or "16")
  local r = {}
  for i = 1, depth do r[i] = wrk.format("GET", "/") end
  req = table.concat(r)
end
function request() return req end
