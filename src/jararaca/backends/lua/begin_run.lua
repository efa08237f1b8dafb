-- Decide whether a worker may start one fire (see RunLeases.begin_run).
-- KEYS: run HASH (owner, lease, attempt, done), then the overlap HASH (fire, owner, lease) when
--       ARGV[7] is 1, then the action's history index ZSET and records HASH when ARGV[8] is 1
-- ARGV: fire id, owner, now ms, lease end ms, keep-done ms, skip on overlap (1|0),
--       has overlap (1|0), has record (1|0), record JSON, scheduled ms, history limit
-- Returns {status, attempt, holder's lease end ms or ''}; status is started|done|busy|overlap.
local run = KEYS[1]
local fire, owner = ARGV[1], ARGV[2]
local now, lease, keep = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local overlap, index, records
local next_key = 2
if ARGV[7] == '1' then
  overlap = KEYS[next_key]
  next_key = next_key + 1
end
if ARGV[8] == '1' then
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

if overlap then
  local holder = redis.call('HMGET', overlap, 'fire', 'owner', 'lease')
  if holder[1] and holder[1] ~= fire and tonumber(holder[3]) > now then
    if ARGV[6] == '1' then
      -- Recorded as done so that a redelivery of this skipped fire is not run later.
      redis.call('DEL', run)
      redis.call('HSET', run, 'owner', owner, 'lease', now, 'attempt', 1, 'done', now + keep)
      redis.call('PEXPIRE', run, keep)
      if index then
        add_history(index, records, fire, ARGV[10],
          with_fields(ARGV[9], {o = 'skipped_overlap', fi = now}), ARGV[11])
      end
    end
    return {'overlap', 1, holder[3]}
  end
  redis.call('HSET', overlap, 'fire', fire, 'owner', owner, 'lease', ARGV[4])
  -- The TTL only collects marks of vanished actions; liveness is the lease field.
  redis.call('PEXPIRE', overlap, math.max(lease - now, 0) + keep)
end

attempt = attempt + 1
redis.call('HSET', run, 'owner', owner, 'lease', ARGV[4], 'attempt', attempt)
redis.call('HDEL', run, 'done')
-- Kept past the lease so a take-over after a dead worker still counts attempts.
redis.call('PEXPIRE', run, math.max(lease - now, 0) + keep)
if index then
  add_history(index, records, fire, ARGV[10], with_fields(ARGV[9], {n = attempt}), ARGV[11])
end
return {'started', attempt, ''}
