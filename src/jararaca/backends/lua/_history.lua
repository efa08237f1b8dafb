-- Shared by the scripts that write the run history (prepended when they are loaded).
-- add_history(index ZSET, records HASH, fire id, scheduled ms, record JSON, limit): add or
-- replace a run record and keep only the newest `limit` of the action by scheduled instant.
local function add_history(index, records, fire, scheduled, json, limit)
  redis.call('ZADD', index, scheduled, fire)
  redis.call('HSET', records, fire, json)
  local extra = redis.call('ZCARD', index) - tonumber(limit)
  if extra > 0 then
    local old = redis.call('ZRANGE', index, 0, extra - 1)
    redis.call('ZREM', index, unpack(old))
    redis.call('HDEL', records, unpack(old))
  end
end

-- A record JSON (jararaca.backends.records.RunRecord) with some fields replaced.
local function with_fields(json, fields)
  local record = cjson.decode(json)
  for key, value in pairs(fields) do
    record[key] = value
  end
  return cjson.encode(record)
end
