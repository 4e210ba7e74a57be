-- wrk script for `deno task bench --only app` (the same as compare.sh's `app` mode): cycles through the app's routes (GET text,
-- GET JSON, a parameter with a query and a header, a POST with a JSON body); with an
-- argument N, sends N requests pipelined per write.
local batches, k = {}, 0
function init(args)  -- formatted here: wrk sets the Host header just before init
  local reqs = {
    wrk.format("GET", "/"),
    wrk.format("GET", "/json"),
    wrk.format("GET", "/user/42?q=deno", { ["User-Agent"] = "wrk" }),
    wrk.format("POST", "/echo", { ["Content-Type"] = "application/json" }, '{"a":1,"b":[1,2,3]}'),
  }
  local n = tonumber(args[1] or "1")
  for b = 1, #reqs do  -- each batch starts at another route, so every route is sent
    local parts = {}
    for i = 1, n do parts[i] = reqs[(b + i - 2) % #reqs + 1] end
    batches[b] = table.concat(parts)
  end
end
function request() k = k % #batches + 1; return batches[k] end
