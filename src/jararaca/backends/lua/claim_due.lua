-- Move pending delayed entries due at or before now (earliest first) into flight.
-- KEYS: delayed ZSET, delayed envelopes HASH, in-flight ZSET, in-flight entries HASH
-- ARGV: now ms, lease end ms, limit
-- Returns a flat list: in-flight id, stored entry JSON, due ms, ... (earliest due first).
-- The entry is {"due": due ms, "envelope": the envelope JSON as enqueued}: storage keeps the
-- instant, the beat stamps it into headers. An unreadable entry comes back with the in-flight
-- id "!" (and is not kept), for the caller to log.
local queue, pending, inflight, entries = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local lease = ARGV[2]

local found = redis.call('ZRANGE', queue, '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[3],
  'WITHSCORES')
local taken = {}
-- unpack() is limited by Lua's C stack (about 8,000 values): go by chunks of 1,000 entries.
for first = 1, #found, 2000 do
  local ids, dues = {}, {}
  for i = first, math.min(first + 1999, #found), 2 do
    ids[#ids + 1] = found[i]
    dues[#dues + 1] = found[i + 1]
  end
  local stored = redis.call('HMGET', pending, unpack(ids))
  redis.call('ZREM', queue, unpack(ids))
  redis.call('HDEL', pending, unpack(ids))
  local scores, values = {}, {}
  for k = 1, #ids do
    if stored[k] then
      -- pcall: a script that fails midway keeps its writes, so one unreadable entry must not
      -- abort the batch after the ZREM above.
      local ok, envelope = pcall(cjson.decode, stored[k])
      if ok and type(envelope) == 'table' and type(envelope['id']) == 'string'
          and type(envelope['rk']) == 'string' and type(envelope['body']) == 'string'
          and type(envelope['headers']) == 'table' then
        -- In flight is keyed by task id and message id: retries of one message for several
        -- handlers (one task each) share the message id, and a key reused while its previous
        -- message is still in flight shares the task id.
        local flight = ids[k] .. '/' .. envelope['id']
        local entry = '{"due":' .. dues[k] .. ',"envelope":' .. stored[k] .. '}'
        scores[#scores + 1] = lease
        scores[#scores + 1] = flight
        values[#values + 1] = flight
        values[#values + 1] = entry
        taken[#taken + 1] = flight
        taken[#taken + 1] = entry
      else
        taken[#taken + 1] = '!'
        taken[#taken + 1] = stored[k]
      end
    end
  end
  if #scores > 0 then
    redis.call('ZADD', inflight, unpack(scores))
    redis.call('HSET', entries, unpack(values))
  end
end
return taken
