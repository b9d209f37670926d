-- after clock.lua. KEYS: the lease holders. ARGV: instance ids, or none.
-- Returns those of them whose lease has not ended (every holder's, without
-- ARGV).
if #ARGV == 0 then return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf') end
local out = {}
for i, score in ipairs(redis.call('ZMSCORE', KEYS[1], unpack(ARGV))) do
  if score and tonumber(score) > now then table.insert(out, ARGV[i]) end
end
return out
