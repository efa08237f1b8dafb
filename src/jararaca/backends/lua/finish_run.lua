-- Record a fire as done and release its overlap mark if this owner holds it.
-- KEYS: run HASH [, overlap HASH]
-- ARGV: fire id, owner, now ms, keep-done ms
-- Returns 1.
local run, overlap = KEYS[1], KEYS[2]
local fire, owner, now, keep = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

local attempt = redis.call('HGET', run, 'attempt') or 1
redis.call('DEL', run)
redis.call('HSET', run, 'owner', owner, 'lease', now, 'attempt', attempt, 'done', now + keep)
redis.call('PEXPIRE', run, keep)
if overlap then
  local holder = redis.call('HMGET', overlap, 'fire', 'owner')
  if holder[1] == fire and holder[2] == owner then
    redis.call('DEL', overlap)
  end
end
return 1
