-- wrk script for every HTTP benchmark in bench/ (run by bench/load.py).
--
-- The configuration is a Lua file written by the Python side, named by the
-- environment variable BENCH_WRK_CONFIG; it returns a table:
--   mode     "post_event" | "post_batch" | "get"
--   targets  list of {path = "/v1/...", auth = "Bearer ..."} (or auth = "")
--   nonce    8 hex digits, unique per wrk run (event and programme ids embed it)
--   times    list of RFC 3339 timestamps for occurred_at (post_event)
--   start    occurred_at of ProgrammeStarted; batch events follow it (post_batch)
--   batch    events per batch post, the first one ProgrammeStarted (post_batch)
--   rate     total requests/s to aim at across all connections (0: as fast as possible)
--   threads  wrk's -t, needed to spread `rate` over threads
--   duplicates  (post_event) "pairs": every thread makes the same events in the
--            same order, so each is posted once per thread at about the same
--            moment (a client retrying while its first attempt is in flight);
--            "random": `duplicate_share` of the requests repeat one of the
--            thread's last 100 posts
--   count_statuses  tally the answers' statuses (done() prints them)
--   targets may carry `headers` (a table of extra request headers, get mode)
--
-- post_event: each request posts ONE new event (a fresh event_id) to a
-- random already-started programme among the targets.
-- post_batch: each request starts a NEW programme (a fresh programme_id) at a
-- random target clinic (path is its ".../programmes/" prefix) with a batch.
-- get: each request is a random target.
--
-- done() prints one line "BENCH_JSON {...}" that bench/load.py parses.

local config = dofile(os.getenv("BENCH_WRK_CONFIG"))
local targets = config.targets
local ntargets = #targets
local counter = 0
local prebuilt = nil

local next_thread = 0
local threads = {}
function setup(thread)
  -- Sets the global `tid` in that thread's own Lua state.
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
  threads[next_thread] = thread
end

local pairs_mode = config.duplicates == "pairs"
local recent = {}  -- the thread's last posts ("random" duplicates)
statuses = {}

function init(args)
  tid = tid or 0
  -- In pairs mode every thread draws the same programmes in the same order.
  math.randomseed(tonumber(config.nonce, 16) + (pairs_mode and 0 or tid * 7919))
  if config.mode == "get" then
    prebuilt = {}
    for i, t in ipairs(targets) do
      local headers = {}
      if t.auth ~= "" then headers["Authorization"] = t.auth end
      for name, value in pairs(t.headers or {}) do headers[name] = value end
      prebuilt[i] = wrk.format("GET", t.path, headers, nil)
    end
  end
end

if config.count_statuses then
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

-- A UUID unique per run, thread and request: nonce-thread-counter (in pairs
-- mode the thread is left out: each thread makes the same ids).
local function uuid(kind)
  counter = counter + 1
  return string.format("%s-%04x-4%03x-8%03x-%012x", config.nonce,
                       pairs_mode and 0 or tid % 65536,
                       kind % 4096, math.floor(counter / 4294967296) % 4096, counter % 4294967296)
end

local function session_data(modality)
  if modality == "mechanical_table" then
    return '{"modality": "mechanical_table", "duration_minutes": 30, "supervised": true, ' ..
           '"force_percent_body_weight": 30, "discomfort_nrs": ' .. math.random(0, 6) .. '}'
  end
  return '{"modality": "' .. modality .. '", "duration_minutes": 20, "supervised": false}'
end

local function event(event_type, occurred_at, data)
  return '{"event_id": "' .. uuid(1) .. '", "type": "' .. event_type .. '", "occurred_at": "' ..
         occurred_at .. '", "recorded_by": "bench.writer", "data": ' .. data .. '}'
end

local function next_event(occurred_at, n, modality)
  if n % 3 == 2 then
    return event("PainReported", occurred_at,
                 '{"pain_nrs": ' .. math.random(0, 10) .. ', "context": "after_session"}')
  end
  return event("SessionCompleted", occurred_at, session_data(modality))
end

function request()
  local t = targets[math.random(1, ntargets)]
  if config.mode == "get" then
    return prebuilt[math.random(1, ntargets)]
  end
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = t.auth}
  if config.mode == "post_event" then
    if config.duplicates == "random" and #recent > 0
        and math.random() < (config.duplicate_share or 0.1) then
      return recent[math.random(1, #recent)]
    end
    local when = config.times[math.random(1, #config.times)]
    local made = wrk.format("POST", t.path, headers, next_event(when, math.random(0, 2),
                                                                 "mechanical_table"))
    if config.duplicates == "random" then
      recent[(counter % 100) + 1] = made
    end
    return made
  end
  -- post_batch: a new programme with `batch` events.
  local programme = uuid(2)
  local parts = {event("ProgrammeStarted", config.start,
    '{"patient_ref": "pt-' .. programme:sub(1, 8) .. '", "condition": "sciatica", ' ..
    '"setting": "in_office", "plan": {"modality": "mechanical_table", "sessions_per_week": 3, ' ..
    '"minutes_per_session": 30, "force_percent_body_weight": 30}, ' ..
    '"baseline": {"pain_nrs": 7, "odi_percent": 40}}')}
  for n = 2, config.batch do
    parts[n] = next_event(config.times[(n % #config.times) + 1], n, "mechanical_table")
  end
  local body = '{"expected_version": 0, "events": [' .. table.concat(parts, ", ") .. ']}'
  return wrk.format("POST", t.path .. programme .. "/events", headers, body)
end

-- Pacing at `rate` requests/s: each thread hands out send slots at
-- threads/rate intervals to whichever of its connections is ready, so the
-- rate holds whatever the latency (given enough connections to wait in).
if config.rate and config.rate > 0 then
  local ffi = require("ffi")
  ffi.cdef([[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clock_id, bench_timespec *tp);
  ]])
  local ts = ffi.new("bench_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
  local interval = config.threads * 1000 / config.rate
  local next_slot = nil
  function delay()
    local now = now_ms()
    if next_slot == nil or next_slot < now - 1000 then
      next_slot = now  -- start, or fallen more than a second behind: no burst to catch up
    end
    local slot = next_slot
    next_slot = next_slot + interval
    return math.max(0, slot - now)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local percentiles = {}
  for _, q in ipairs({50, 75, 90, 99, 99.9}) do
    percentiles[#percentiles + 1] = string.format('"p%s": %d', q, latency:percentile(q))
  end
  local tally = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      tally[status] = (tally[status] or 0) + count
    end
  end
  local counted = {}
  for status, count in pairs(tally) do
    counted[#counted + 1] = string.format('"%d": %d', status, count)
  end
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "stdev": %.1f, "max": %d, %s}, "statuses": {%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max, table.concat(percentiles, ", "),
    table.concat(counted, ", ")))
end
