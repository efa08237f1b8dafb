-- Add or update one pending delayed entry with the seed's idempotency policies.
-- KEYS: delayed ZSET (task id -> due ms), delayed envelopes HASH
-- ARGV: task id, due ms, envelope JSON, payload policy (ignore|replace),
--       time policy (replace|greater|lesser), wake-up channel
-- Returns 1 when the queue's head became sooner (listeners were told), else 0.
local queue, envelopes = KEYS[1], KEYS[2]
local task, due, envelope = ARGV[1], ARGV[2], ARGV[3]

local function head_due()
  local head = redis.call('ZRANGE', queue, 0, 0, 'WITHSCORES')
  return head[2] and tonumber(head[2])
end

local before = head_due()
-- payload: ignore keeps a pending envelope (SET NX), replace overwrites it (SET).
if ARGV[4] == 'replace' then
  redis.call('HSET', envelopes, task, envelope)
else
  redis.call('HSETNX', envelopes, task, envelope)
end
-- time: GT/LT only guard an existing member; a new task id is always added.
if ARGV[5] == 'greater' then
  redis.call('ZADD', queue, 'GT', due, task)
elseif ARGV[5] == 'lesser' then
  redis.call('ZADD', queue, 'LT', due, task)
else
  redis.call('ZADD', queue, due, task)
end
local after = head_due()
if not before or after < before then
  redis.call('PUBLISH', ARGV[6], after)
  return 1
end
return 0
