-- Decide whether a worker may start one fire (see RunLeases.begin_run).
-- KEYS: run HASH (owner, lease, attempt, done), then the overlap HASH when ARGV[9] is 1, then
--       the action's history index ZSET and records HASH when ARGV[10] is 1
-- ARGV: fire id, owner, now ms, lease end ms, keep-done ms, on overlap
--       (skip|wait|wait_one|cancel_other), order ms, ahead (1|0), has overlap (1|0),
--       has record (1|0), record JSON, scheduled ms, history limit
-- The overlap HASH (see RunLeases): the holder (fire, owner, lease, at = its order), a cancel
-- request (cancel = the asking fire, cancel_at = its order, cancel_until), the waiting fires
-- (one field `w:<fire id>` = '<order>:<kept until ms>' each) and the earliest of them cached
-- (next, next_at, next_until): rechecks cost O(1), a scan happens when the earliest leaves.
-- Returns {status, attempt, blocking ms or ''}; status is started|done|busy|overlap|waiting|
-- early. Asked ahead of the fire's instant, a fire the mark would skip or make wait (or whose
-- cancel_other would ask the holder to stop) changes nothing and is 'early': ask at the instant.
local run = KEYS[1]
local fire, owner, mode = ARGV[1], ARGV[2], ARGV[6]
local now, lease, keep = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local order = tonumber(ARGV[7])
local ahead = ARGV[8] == '1'
local overlap, index, records
local next_key = 2
if ARGV[9] == '1' then
  overlap = KEYS[next_key]
  next_key = next_key + 1
end
if ARGV[10] == '1' then
  index, records = KEYS[next_key], KEYS[next_key + 1]
end

local record = redis.call('HMGET', run, 'owner', 'lease', 'attempt', 'done')
local attempt = 0
if record[3] then
  attempt = tonumber(record[3])
  if record[4] then
    if tonumber(record[4]) > now then
      return {'done', attempt, ''}
    end
    attempt = 0  -- finished longer ago than we promise to remember: a new fire
  elseif tonumber(record[2]) > now then
    -- Live, whoever holds it: a second delivery to the same worker must not run it twice.
    return {'busy', attempt, record[2]}
  end
end

local function skip(until_ms)
  if ahead then
    return {'early', 1, until_ms}
  end
  -- Recorded as done so that a redelivery of this skipped fire is not run later.
  redis.call('DEL', run)
  redis.call('HSET', run, 'owner', owner, 'lease', now, 'attempt', 1, 'done', now + keep)
  redis.call('PEXPIRE', run, keep)
  if index then
    add_history(index, records, fire, ARGV[12],
      with_fields(ARGV[11], {o = 'skipped_overlap', fi = now}), ARGV[13])
  end
  return {'overlap', 1, until_ms}
end

-- Whether fire a (order a_at) comes before fire b: by order, then by fire id.
local function before(a_at, a, b_at, b)
  return a_at < b_at or (a_at == b_at and a < b)
end

if overlap then
  local m = redis.call('HMGET', overlap, 'fire', 'lease', 'at', 'next', 'next_at',
    'next_until', 'cancel', 'cancel_at', 'cancel_until', 'w:' .. fire)
  local holding = m[1] and m[1] ~= fire and tonumber(m[2]) > now
  local head, head_at, head_at_text, head_until = m[4], tonumber(m[5] or 0), m[5], m[6]

  -- The TTL only collects marks of vanished actions; liveness is in the fields.
  local function keep_mark()
    local ttl = math.max(lease - now, 0) + keep
    if redis.call('PTTL', overlap) < ttl then
      redis.call('PEXPIRE', overlap, ttl)
    end
  end
  -- Find the earliest live waiting fire again (dropping those no longer kept).
  local function find_head()
    head, head_at, head_at_text, head_until = nil, 0, nil, nil
    local fields = redis.call('HGETALL', overlap)
    for i = 1, #fields, 2 do
      if string.sub(fields[i], 1, 2) == 'w:' then
        local id, value = string.sub(fields[i], 3), fields[i + 1]
        local sep = string.find(value, ':', 1, true)
        local at, kept = string.sub(value, 1, sep - 1), string.sub(value, sep + 1)
        if tonumber(kept) <= now then
          redis.call('HDEL', overlap, fields[i])
        elseif not head or before(tonumber(at), id, head_at, head) then
          head, head_at, head_at_text, head_until = id, tonumber(at), at, kept
        end
      end
    end
    if head then
      redis.call('HSET', overlap, 'next', head, 'next_at', head_at_text, 'next_until', head_until)
    else
      redis.call('HDEL', overlap, 'next', 'next_at', 'next_until')
    end
  end
  if head and tonumber(head_until) <= now then
    find_head()
  end
  local registered = m[10] and tonumber(string.match(m[10], ':(%d+)$')) > now
  local my_turn = not head or head == fire or before(order, fire, head_at, head)
  local blocked_until = (holding and m[2]) or head_until or ''

  local function wait()
    if ahead then
      return {'early', 1, blocked_until}
    end
    redis.call('HSET', overlap, 'w:' .. fire, ARGV[7] .. ':' .. ARGV[4])
    if my_turn then
      redis.call('HSET', overlap, 'next', fire, 'next_at', ARGV[7], 'next_until', ARGV[4])
    end
    keep_mark()
    return {'waiting', 1, blocked_until}
  end

  -- A fire taken over after its worker died (it still names the mark) resumes at once.
  if m[1] ~= fire then
    if mode == 'skip' then
      if holding then
        return skip(m[2])
      elseif not my_turn then
        -- A missed slot waits to run (catch-up): it goes first, or fires arriving whenever
        -- the mark is free could keep it waiting for ever.
        return skip(blocked_until)
      end
    elseif mode == 'wait' then
      if holding or not my_turn then
        return wait()
      end
    elseif mode == 'wait_one' then
      if not registered and head then
        return skip(blocked_until)  -- another fire already waits
      elseif holding or not my_turn then
        return wait()
      end
    else  -- cancel_other: the latest fire wins; an earlier one, running or waiting, gives way
      local asking = m[7] and m[7] ~= fire and tonumber(m[9]) > now
      if (holding and before(order, fire, tonumber(m[3] or 0), m[1]))
          or (asking and before(order, fire, tonumber(m[8]), m[7])) then
        return skip(blocked_until)
      elseif holding then
        if ahead then
          return {'early', 1, m[2]}
        end
        redis.call('HSET', overlap, 'cancel', fire, 'cancel_at', ARGV[7], 'cancel_until', ARGV[4])
        keep_mark()
        return {'waiting', 1, m[2]}
      end
    end
    -- A new holder: a request to stop was for the previous one.
    redis.call('HDEL', overlap, 'cancel', 'cancel_at', 'cancel_until')
  end
  redis.call('HSET', overlap, 'fire', fire, 'owner', owner, 'lease', ARGV[4], 'at', ARGV[7])
  if m[10] then
    redis.call('HDEL', overlap, 'w:' .. fire)
    if head == fire then
      find_head()
    end
  end
  keep_mark()
end

attempt = attempt + 1
redis.call('HSET', run, 'owner', owner, 'lease', ARGV[4], 'attempt', attempt)
redis.call('HDEL', run, 'done')
-- Kept past the lease so a take-over after a dead worker still counts attempts.
redis.call('PEXPIRE', run, math.max(lease - now, 0) + keep)
if index then
  add_history(index, records, fire, ARGV[12], with_fields(ARGV[11], {n = attempt}), ARGV[13])
end
return {'started', attempt, ''}
