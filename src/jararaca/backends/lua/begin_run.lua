-- Decide whether a worker may start one fire (see Backend.begin_run).
-- KEYS: run HASH (owner, lease, attempt, done) [, overlap HASH (fire, owner, lease)]
-- ARGV: fire id, owner, now ms, lease end ms, keep-done ms, skip on overlap (1|0)
-- Returns {status, attempt, holder's lease end ms or ''}; status is started|done|busy|overlap.
local run, overlap = KEYS[1], KEYS[2]
local fire, owner = ARGV[1], ARGV[2]
local now, lease, keep = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])

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
return {'started', attempt, ''}
