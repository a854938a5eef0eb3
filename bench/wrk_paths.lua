-- wrk script for bench/api (phases.py): GET the paths of a file in order (cycling), stop after a
-- number of answers (and say so in OUT_FILE.done), and write what came back (status and
-- body-size counts, latency percentiles) as JSON to OUT_FILE.
--
--   wrk -t1 -c16 -d600s -H 'Authorization: Bearer …' -s bench/wrk_paths.lua URL \
--       -- PATHS_FILE LIMIT OUT_FILE

local paths, limit = {}, 0
local sent, answered = 0, 0
statuses, sizes, out_path = {}, {}, nil  -- globals: done() reads them through the thread
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
  limit = tonumber(args[2])
  out_path = args[3]
end

function request()
  sent = sent + 1
  return wrk.format("GET", paths[((sent - 1) % #paths) + 1])
end

function response(status, headers, body)
  answered = answered + 1
  statuses[status] = (statuses[status] or 0) + 1
  sizes[#body] = (sizes[#body] or 0) + 1
  if answered == limit then
    -- The bench waits for this file, then stops wrk with SIGINT: wrk's own run lasts -d.
    local marker = io.open(out_path .. ".done", "w")
    marker:close()
    wrk.thread:stop()
  end
end

local function counts(t)
  local parts = {}
  for k, v in pairs(t) do
    parts[#parts + 1] = string.format('"%d": %d', k, v)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
  local thread = threads[1]
  local pct = {}
  for _, q in ipairs({50, 90, 99}) do
    pct[#pct + 1] = string.format('"%d": %d', q, latency:percentile(q))
  end
  local out = io.open(thread:get("out_path"), "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": %d, "latency_us": {%s, "max": %d}, '
      .. '"statuses": %s, "sizes": %s}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    table.concat(pct, ", "), latency.max,
    counts(thread:get("statuses")), counts(thread:get("sizes"))))
  out:close()
end
