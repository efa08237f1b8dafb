-- Record a fire as done and release its overlap mark if this owner holds it.
-- KEYS: run HASH [, overlap HASH]
-- ARGV: fire id, owner, now ms, keep-done ms
-- Returns 1.
local run, overlap = KEYS[1], KEYS[2]
local fire, owner, now, keep = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

local record = redis.call('HMGET', run, 'owner', 'lease', 'attempt', 'done')
-- A slow (not dead) owner finishing after another worker took the run over must not mark the
-- new owner's live run done: that would stop its renewals.
local taken_over = record[1] and record[1] ~= owner and not record[4]
  and tonumber(record[2]) > now
if not taken_over then
  local attempt = record[3] or 1
  redis.call('DEL', run)
  redis.call('HSET', run, 'owner', owner, 'lease', now, 'attempt', attempt, 'done', now + keep)
  redis.call('PEXPIRE', run, keep)
end
if overlap then
  local holder = redis.call('HMGET', overlap, 'fire', 'owner')
  if holder[1] == fire and holder[2] == owner then
    redis.call('DEL', overlap)
  end
end
return 1
