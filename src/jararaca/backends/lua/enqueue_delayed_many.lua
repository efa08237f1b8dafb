-- Add many pending delayed entries without idempotency keys (task id = message id).
-- KEYS: delayed ZSET (task id -> due ms), delayed envelopes HASH
-- ARGV: wake-up channel, then per entry: task id, due ms, envelope JSON
-- Returns 1 when the queue's head became sooner (listeners were told), else 0.
local queue, envelopes = KEYS[1], KEYS[2]

local function head_due()
  local head = redis.call('ZRANGE', queue, 0, 0, 'WITHSCORES')
  return head[2] and tonumber(head[2])
end

local before = head_due()
local scores, values = {}, {}
local function flush()
  if #scores > 0 then
    redis.call('ZADD', queue, unpack(scores))
    redis.call('HSET', envelopes, unpack(values))
    scores, values = {}, {}
  end
end
for i = 2, #ARGV, 3 do
  scores[#scores + 1] = ARGV[i + 1]
  scores[#scores + 1] = ARGV[i]
  values[#values + 1] = ARGV[i]
  values[#values + 1] = ARGV[i + 2]
  -- unpack() is limited by Lua's C stack (about 8,000 values): write by chunks.
  if #scores >= 2000 then
    flush()
  end
end
flush()
local after = head_due()
if after and (not before or after < before) then
  redis.call('PUBLISH', ARGV[1], after)
  return 1
end
return 0
