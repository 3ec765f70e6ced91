-- wrk script for bench/strategies.sh: every wrk thread is one API client on one keep-alive
-- connection (run wrk with as many connections as threads), so its requests and responses
-- alternate and it can check its own reads.
--
-- Each client writes every WRITE_EVERY-th request to a thread of its own (a new thread every
-- 20 comments, so a page holds them all) and otherwise reads that thread, carrying the
-- highest `Afterword-Position` it has been given and naming the strategy in
-- `Afterword-Read-Strategy`. After a write, every read must contain the new comment: a read
-- that lacks it is a read-your-writes miss. `Afterword-Served-By` says where each read went.
--
-- Clients numbered above WRITERS only read: each the first thread of one writer, carrying the
-- highest position its reads returned, as most visitors of a page do.
--
-- Arguments (after `--`): STRATEGY WRITE_EVERY PREFIX WRITERS (0: every client writes)

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("client", next_id)
  table.insert(threads, thread)
end

function init(args)
  strategy = args[1] or "causal"
  write_every = tonumber(args[2] or "20")
  prefix = args[3] or "/bench/strategies"
  writers = tonumber(args[4] or "0")
  is_writer = writers == 0 or client <= writers
  n = 0
  best, best_pos = nil, -1
  last_id = nil
  last_write = nil
  current_thread = nil
  kind = nil
  reads, writes, on_replica, after_wait, cached, misses, failures = 0, 0, 0, 0, 0, 0, 0
end

local function next_thread_key()
  return string.format("%s/%d/%d", prefix, client, math.floor(writes / 20))
end

local function carry(token)
  if token == nil then return end
  local pos = tonumber(string.match(token, "%.(%d+)$"))
  if pos ~= nil and pos > best_pos then
    best, best_pos = token, pos
  end
end

function request()
  n = n + 1
  local headers = { ["Afterword-Read-Strategy"] = strategy }
  if best ~= nil then headers["Afterword-Position"] = best end
  -- As a browser returns the cookie: when this client last wrote (for `sticky`).
  if last_write ~= nil then headers["Afterword-Last-Write"] = last_write end
  if not is_writer then
    kind = "read"
    local thread = string.format("%s/%d/0", prefix, 1 + client % writers)
    return wrk.format("GET", "/api/v1/comments?format=flat&limit=50&thread=" .. thread, headers)
  end
  if current_thread == nil or n % write_every == 1 then
    kind = "write"
    current_thread = next_thread_key()
    headers["Content-Type"] = "application/json"
    local body = string.format('{"thread":"%s","text":"benchmark comment %d from client %d"}', current_thread, n, client)
    return wrk.format("POST", "/api/v1/comments", headers, body)
  end
  kind = "read"
  return wrk.format("GET", "/api/v1/comments?format=flat&limit=50&thread=" .. current_thread, headers)
end

function response(status, headers, body)
  carry(headers["afterword-position"])
  if kind == "write" then
    if status == 201 then
      writes = writes + 1
      last_id = string.match(body, '"id":"(%d+)"')
      last_write = headers["afterword-last-write"] or last_write
    else
      failures = failures + 1
    end
    return
  end
  if status ~= 200 then
    failures = failures + 1
    return
  end
  reads = reads + 1
  -- A cache hit names where its entry was read; only a miss waited (or not) just now.
  local served_by = headers["afterword-served-by"] or ""
  local hit = headers["afterword-cache"] == "hit"
  if hit then cached = cached + 1 end
  if string.find(served_by, "replica", 1, true) then on_replica = on_replica + 1 end
  if not hit and string.find(served_by, "after-wait", 1, true) then after_wait = after_wait + 1 end
  if last_id ~= nil and not string.find(body, '"id":"' .. last_id .. '"', 1, true) then
    misses = misses + 1
  end
end

function done(summary, latency, requests)
  local totals = { reads = 0, writes = 0, on_replica = 0, after_wait = 0, cached = 0, misses = 0, failures = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + (thread:get(name) or 0)
    end
  end
  io.write(string.format("afterword: reads=%d writes=%d on_replica=%d after_wait=%d cached=%d misses=%d failures=%d\n",
    totals.reads, totals.writes, totals.on_replica, totals.after_wait, totals.cached, totals.misses, totals.failures))
end
