-- Claim cron fires for dispatch: each fire id once across every beat, for at least an hour.
-- KEYS: fire claims ZSET (fire id -> remembered until ms), last fires HASH, in-flight ZSET,
--       in-flight entries HASH (a fire's entry is its envelope JSON; its in-flight id is its
--       id), paused HASH, then per claim: its action's history index ZSET and records HASH
-- ARGV: now ms, lease end ms, claim TTL ms, history limit, then per claim:
--       fire id, action id, scheduled ms, message id, envelope JSON
-- Returns per claim: 1 (claimed, now in flight), 0 (claimed before), 2 (action paused: the
-- slot is recorded skipped_paused and counts as dispatched, so catch-up never replays it).
local claims, last, inflight, envelopes, paused = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, lease, ttl, limit = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]

-- Trimming expired claims here keeps the ZSET at about one TTL's worth of fires.
redis.call('ZREMRANGEBYSCORE', claims, '-inf', now)
local answers = {}
local n = 0
for i = 5, #ARGV, 5 do
  n = n + 1
  local fire, action, at = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('ZSCORE', claims, fire) then
    answers[#answers + 1] = 0
  else
    redis.call('ZADD', claims, now + ttl, fire)
    local previous = redis.call('HGET', last, action)
    -- The last fire only moves forward: a late beat must not make a slot look missed again.
    if not previous or tonumber(previous) < tonumber(at) then
      redis.call('HSET', last, action, at)
    end
    if redis.call('HEXISTS', paused, action) == 1 then
      local record = cjson.encode({f = fire, a = action, s = tonumber(at), o = 'skipped_paused',
        fi = now, n = 1})
      add_history(KEYS[4 + 2 * n], KEYS[5 + 2 * n], fire, at, record, limit)
      answers[#answers + 1] = 2
    else
      redis.call('ZADD', inflight, lease, ARGV[i + 3])
      redis.call('HSET', envelopes, ARGV[i + 3], ARGV[i + 4])
      answers[#answers + 1] = 1
    end
  end
end
-- With no beat for a whole TTL every claim has expired anyway, so the key may go too.
redis.call('PEXPIRE', claims, ttl)
return answers
