-- Remove one pending delayed entry, if it is (still) the message the caller means.
-- KEYS: delayed ZSET, delayed envelopes HASH
-- ARGV: task id, message id ('' for whatever message the task holds)
-- Returns 1 when an entry was removed, else 0. Checking the message id here makes a cancel by
-- message id atomic: the task may have been claimed and its key reused by another message
-- since the caller found it.
local queue, envelopes = KEYS[1], KEYS[2]
local task, wanted = ARGV[1], ARGV[2]
local stored = redis.call('HGET', envelopes, task)
if not stored then
  return 0
end
if wanted ~= '' then
  local ok, envelope = pcall(cjson.decode, stored)
  if not ok or type(envelope) ~= 'table' or envelope['id'] ~= wanted then
    return 0
  end
end
redis.call('ZREM', queue, task)
redis.call('HDEL', envelopes, task)
return 1
