-- Delete a dynamic schedule and bump the version beats follow, in one step.
-- KEYS: schedules HASH, version counter
-- ARGV: schedule id
-- Returns 1 when there was one, else 0.
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[2])
return removed
