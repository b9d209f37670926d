-- KEYS: logs (one on a cluster: a script may touch one slot only; every
-- bucket's at once on one server). ARGV: keep, lease. Each log's live
-- entries, one array per log: sid, milliseconds left to keep it.
--
-- Each call also announces the caller's retention in `<log>:keep`, which
-- every writer trims by when it is the longer (ended.lua): the longest
-- retention any feed announced within a lease. A shorter announcement leaves a
-- longer one alone until its lease runs out, so an instance that stopped
-- stops counting after one lease; the feed announces again within every lease.
local keep, lease, out = tonumber(ARGV[1]), tonumber(ARGV[2]), {}
for _, log in ipairs(KEYS) do
  local held = tonumber(redis.call('GET', log .. ':keep'))
  if not held or keep >= held then
    redis.call('SET', log .. ':keep', keep, 'PX', lease)
  end
  local entries, these = redis.call('ZRANGEBYSCORE', log, now - keep, '+inf', 'WITHSCORES'), {}
  for i = 1, #entries, 2 do
    table.insert(these, entries[i]); table.insert(these, keep - (now - tonumber(entries[i + 1])))
  end
  table.insert(out, these)
end
return out
