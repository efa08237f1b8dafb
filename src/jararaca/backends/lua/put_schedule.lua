-- Store a dynamic schedule and bump the version beats follow, in one step: a beat that sees
-- the new version finds the schedule, and a stored schedule never waits for a later bump.
-- KEYS: schedules HASH, version counter
-- ARGV: schedule id, schedule JSON
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[2])
return 1
