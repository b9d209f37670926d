-- KEYS: user, log. ARGV: keep. The user's key is its own index, so none of
-- its sessions can hide from this. Returns the sids of the live sessions it
-- ended.
local gone = {}
local v = redis.call('GET', KEYS[1])
if v then
  for _, e in ipairs(each(v)) do
    if now < e[7] and now < e[8] then table.insert(gone, e[3]) end
  end
  redis.call('DEL', KEYS[1])
end
ended(KEYS[2], gone, now, tonumber(ARGV[1]))
return gone
