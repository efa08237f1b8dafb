-- Move pending delayed entries due at or before now (earliest first) into flight.
-- KEYS: delayed ZSET, delayed envelopes HASH, in-flight ZSET, in-flight envelopes HASH
-- ARGV: now ms, lease end ms, limit
-- Returns the envelopes' JSON, earliest due first, each with its x-jararaca-due-at header set
-- to the due instant the entry had (a time policy may have moved it after it was built).
local queue, pending, inflight, envelopes = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local lease = ARGV[2]

-- Epoch ms -> ISO 8601 UTC with milliseconds, as jararaca.wire.format_instant writes it.
-- Scripts have no os.date; days -> civil date is H. Hinnant's days_from_civil inverse.
local function iso_instant(ms)
  local seconds = math.floor(ms / 1000)
  local days = math.floor(seconds / 86400)
  local in_day = seconds - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', year, month, day,
    math.floor(in_day / 3600), math.floor(in_day % 3600 / 60), in_day % 60, ms - seconds * 1000)
end

local found = redis.call('ZRANGE', queue, '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, ARGV[3],
  'WITHSCORES')
local taken = {}
-- unpack() is limited by Lua's C stack (about 8,000 values): go by chunks of 1,000 entries.
for first = 1, #found, 2000 do
  local ids, dues = {}, {}
  for i = first, math.min(first + 1999, #found), 2 do
    ids[#ids + 1] = found[i]
    dues[#dues + 1] = tonumber(found[i + 1])
  end
  local stored = redis.call('HMGET', pending, unpack(ids))
  redis.call('ZREM', queue, unpack(ids))
  redis.call('HDEL', pending, unpack(ids))
  local scores, values = {}, {}
  for k = 1, #ids do
    if stored[k] then
      -- pcall: a script that fails midway keeps its writes, so one unreadable entry must not
      -- abort the batch after the ZREM above. It is handed back marked, for the caller to log.
      local ok, envelope = pcall(cjson.decode, stored[k])
      if ok and type(envelope) == 'table' and type(envelope['headers']) == 'table' then
        envelope['headers']['x-jararaca-due-at'] = iso_instant(dues[k])
        -- In flight is keyed by task id and message id: retries of one message for several
        -- handlers (one task each) share the message id, and a key reused while its previous
        -- message is still in flight shares the task id.
        local flight = ids[k] .. '/' .. envelope['id']
        envelope['headers']['x-jararaca-inflight'] = flight
        local json = cjson.encode(envelope)
        scores[#scores + 1] = lease
        scores[#scores + 1] = flight
        values[#values + 1] = flight
        values[#values + 1] = json
        taken[#taken + 1] = json
      else
        taken[#taken + 1] = '!' .. stored[k]
      end
    end
  end
  if #scores > 0 then
    redis.call('ZADD', inflight, unpack(scores))
    redis.call('HSET', envelopes, unpack(values))
  end
end
return taken
