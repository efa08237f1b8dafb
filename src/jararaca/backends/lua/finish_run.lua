-- Record a fire as done and release its overlap mark if this owner holds it.
-- KEYS: run HASH, then the overlap HASH when ARGV[5] is 1, then the action's history index
--       ZSET and records HASH when ARGV[6] is 1
-- ARGV: fire id, owner, now ms, keep-done ms, has overlap (1|0), has record (1|0),
--       record JSON, scheduled ms, history limit
-- Returns 1.
local run = KEYS[1]
local fire, owner, now, keep = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local overlap, index, records
local next_key = 2
if ARGV[5] == '1' then
  overlap = KEYS[next_key]
  next_key = next_key + 1
end
if ARGV[6] == '1' then
  index, records = KEYS[next_key], KEYS[next_key + 1]
end

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
  if index then
    add_history(index, records, fire, ARGV[8], ARGV[7], ARGV[9])
  end
end
if overlap then
  local holder = redis.call('HMGET', overlap, 'fire', 'owner')
  if holder[1] == fire and holder[2] == owner then
    -- Waiting fires (and a cancel request, whose fire waits) stay; Redis deletes an empty HASH.
    redis.call('HDEL', overlap, 'fire', 'owner', 'lease', 'at')
  end
end
return 1
