-- Records ended sessions in their bucket's revocation log (a sorted set scored
-- by the time they ended, trimmed to the retention) and publishes them on the
-- bucket's sharded channel (SPUBLISH: it stays within the shard, so it works
-- on a cluster as on one server): what every instance in instant mode
-- follows. `log` is both the key and the channel.
--
-- The retention is the longer of the caller's and the one the feeds announced
-- (`<log>:keep`, written by catch_up.lua): a process with a short access
-- lifetime (the admin CLI, an instance mid-way through a rolling change of
-- the lifetime) must not trim what other instances may still need to catch
-- up on.
local function ended(log, sids, now, keep)
  if #sids == 0 then return end
  local announced = tonumber(redis.call('GET', log .. ':keep'))
  if announced and announced > keep then keep = announced end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - keep)
  for _, sid in ipairs(sids) do redis.call('ZADD', log, now, sid) end
  redis.call('PEXPIRE', log, keep)
  redis.call('SPUBLISH', log, table.concat(sids, ' '))
end
