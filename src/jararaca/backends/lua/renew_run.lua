-- Extend a run's lease (and its overlap mark's) if the owner still holds it. A release is a
-- renewal to end now, with the cancelled run's record for the history.
-- KEYS: run HASH, then the overlap HASH when ARGV[4] is 1, then the action's history index
--       ZSET and records HASH when ARGV[5] is 1
-- ARGV: fire id, owner, new lease end ms, has overlap (1|0), has record (1|0), record JSON,
--       scheduled ms, history limit
-- Returns 1 when renewed, 0 when the run is finished, held by someone else, or its overlap
-- mark was taken by another fire.
local run = KEYS[1]
local fire, owner, lease = ARGV[1], ARGV[2], tonumber(ARGV[3])
local overlap, index, records
local next_key = 2
if ARGV[4] == '1' then
  overlap = KEYS[next_key]
  next_key = next_key + 1
end
if ARGV[5] == '1' then
  index, records = KEYS[next_key], KEYS[next_key + 1]
end

-- No `now` is given here, so TTLs move by as much as the lease moved.
local function extend(key, delta)
  local ttl = redis.call('PTTL', key)
  if delta > 0 and ttl > 0 then
    redis.call('PEXPIRE', key, ttl + delta)
  end
end

local record = redis.call('HMGET', run, 'owner', 'lease', 'done')
if record[1] ~= owner or record[3] then
  return 0
end
local holder
if overlap then
  holder = redis.call('HMGET', overlap, 'fire', 'owner', 'lease')
  if holder[1] ~= fire then
    -- Another fire of the action took the mark (this run stalled past its lease): it no
    -- longer holds what let it start, so say so instead of renewing.
    return 0
  end
end
redis.call('HSET', run, 'lease', ARGV[3])
extend(run, lease - tonumber(record[2]))
if holder and holder[2] == owner then
  redis.call('HSET', overlap, 'lease', ARGV[3])
  extend(overlap, lease - tonumber(holder[3]))
end
if index then
  add_history(index, records, fire, ARGV[7], ARGV[6], ARGV[8])
end
return 1
