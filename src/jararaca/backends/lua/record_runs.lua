-- Add or replace run records in their actions' histories.
-- KEYS: per record: its action's history index ZSET and records HASH
-- ARGV: history limit, then per record: fire id, scheduled ms, record JSON
-- Returns how many records were written.
local n = 0
for i = 2, #ARGV, 3 do
  n = n + 1
  add_history(KEYS[2 * n - 1], KEYS[2 * n], ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[1])
end
return n
