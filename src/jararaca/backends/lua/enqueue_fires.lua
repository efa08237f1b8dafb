-- Queue fires for dispatch now (trigger, backfill) unless they are known already.
-- KEYS: fire claims ZSET, delayed ZSET, delayed envelopes HASH, then per fire: its run HASH
--       and its action's history records HASH
-- ARGV: now ms, due ms, wake-up channel, then per fire: fire id, envelope JSON
-- Returns the fire ids queued. A fire is known when it was claimed within the claim TTL, has
-- a run record (running, or done within the remembered time), is in the history, or waits
-- in the delayed queue already (as itself, or as a recheck of a fire waiting for its turn).
local claims, queue, envelopes = KEYS[1], KEYS[2], KEYS[3]
local now, due = tonumber(ARGV[1]), ARGV[2]
local queued = {}
local n = 0
for i = 4, #ARGV, 2 do
  n = n + 1
  local fire = ARGV[i]
  local run, records = KEYS[2 + 2 * n], KEYS[3 + 2 * n]
  local claimed = tonumber(redis.call('ZSCORE', claims, fire) or 0) > now
  local record = redis.call('HMGET', run, 'lease', 'done')
  local live = tonumber(record[2] or record[1] or 0) > now
  -- A fire waiting for the previous run to end is pending as `recheck:<fire id>`.
  local known = claimed or live or redis.call('HEXISTS', records, fire) == 1
    or redis.call('HEXISTS', envelopes, fire) == 1
    or redis.call('HEXISTS', envelopes, 'recheck:' .. fire) == 1
  if not known then
    redis.call('ZADD', queue, due, fire)
    redis.call('HSET', envelopes, fire, ARGV[i + 1])
    queued[#queued + 1] = fire
  end
end
if #queued > 0 then
  redis.call('PUBLISH', ARGV[3], '1')
end
return queued
