-- KEYS: logs (one on a cluster: a script may touch one slot only; every
-- bucket's at once on one server). ARGV: keep. The logs' live entries: sid,
-- milliseconds left to keep it.
local keep, out = tonumber(ARGV[1]), {}
for _, log in ipairs(KEYS) do
  local entries = redis.call('ZRANGEBYSCORE', log, now - keep, '+inf', 'WITHSCORES')
  for i = 1, #entries, 2 do
    table.insert(out, entries[i]); table.insert(out, keep - (now - tonumber(entries[i + 1])))
  end
end
return out
