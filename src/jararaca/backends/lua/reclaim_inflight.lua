-- Take in-flight entries whose lease ended before now (their beat died), re-lease them and
-- return them to be published again.
-- KEYS: in-flight ZSET, in-flight entries HASH
-- ARGV: now ms, new lease end ms, limit
-- Returns a flat list: in-flight id, stored entry, ... (earliest lease first).
local inflight, entries = KEYS[1], KEYS[2]
local ids = redis.call('ZRANGE', inflight, '-inf', '(' .. ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[3])
local taken = {}
for _, id in ipairs(ids) do
  local entry = redis.call('HGET', entries, id)
  if entry then
    redis.call('ZADD', inflight, ARGV[2], id)
    taken[#taken + 1] = id
    taken[#taken + 1] = entry
  else
    -- A lease with no entry has nothing left to publish: drop it so it stops being due.
    redis.call('ZREM', inflight, id)
  end
end
return taken
