-- Records ended sessions in their bucket's revocation log (a sorted set scored
-- by the time they ended, trimmed to the retention) and publishes them on the
-- bucket's sharded channel (SPUBLISH: it stays within the shard, so it works
-- on a cluster as on one server): what every instance in instant mode
-- follows. `log` is both the key and the channel.
local function ended(log, sids, now, keep)
  if #sids == 0 then return end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - keep)
  for _, sid in ipairs(sids) do redis.call('ZADD', log, now, sid) end
  redis.call('PEXPIRE', log, keep)
  redis.call('SPUBLISH', log, table.concat(sids, ' '))
end
