-- after clock.lua. KEYS: the lease holders (a sorted set: instance id by the
-- store time its lease ends). ARGV: id, lease (ms), '1' to renew or '0' to
-- give it up. Returns 1 if the caller held a live lease before this call
-- (a renewal, not a new grant: a new grant must catch up with the logs
-- before it counts, see feed.rs).
local held = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
local live = held ~= nil and held > now
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[3] ~= '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return live and 1 or 0
end
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
-- The key goes with its longest lease.
if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease) end
return live and 1 or 0
