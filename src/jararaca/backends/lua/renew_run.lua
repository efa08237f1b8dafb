-- Extend a run's lease (and its overlap mark's) if the owner still holds it.
-- KEYS: run HASH [, overlap HASH]
-- ARGV: fire id, owner, new lease end ms
-- Returns 1 when renewed, 0 when the run is finished or held by someone else.
local run, overlap = KEYS[1], KEYS[2]
local fire, owner, lease = ARGV[1], ARGV[2], tonumber(ARGV[3])

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
redis.call('HSET', run, 'lease', ARGV[3])
extend(run, lease - tonumber(record[2]))
if overlap then
  local holder = redis.call('HMGET', overlap, 'fire', 'owner', 'lease')
  if holder[1] == fire and holder[2] == owner then
    redis.call('HSET', overlap, 'lease', ARGV[3])
    extend(overlap, lease - tonumber(holder[3]))
  end
end
return 1
