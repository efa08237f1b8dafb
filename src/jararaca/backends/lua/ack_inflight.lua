-- Forget in-flight entries whose publish the broker confirmed.
-- KEYS: in-flight ZSET, in-flight envelopes HASH
-- ARGV: in-flight ids
-- Returns how many ids were given.
for i = 1, #ARGV, 1000 do
  -- unpack() is limited by Lua's C stack (about 8,000 values): go by chunks.
  local j = math.min(i + 999, #ARGV)
  redis.call('ZREM', KEYS[1], unpack(ARGV, i, j))
  redis.call('HDEL', KEYS[2], unpack(ARGV, i, j))
end
return #ARGV
