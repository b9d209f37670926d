-- KEYS: account + network counter, account counter. ARGV: max per network,
-- max per account, window. Counts the attempt, or refuses it ({0, pttl})
-- without counting when a limit is reached.
local limits = {tonumber(ARGV[1]), tonumber(ARGV[2])}
for i, k in ipairs(KEYS) do
  if tonumber(redis.call('GET', k) or '0') >= limits[i] then
    return {0, math.max(redis.call('PTTL', k), 1)}
  end
end
for _, k in ipairs(KEYS) do
  if redis.call('INCR', k) == 1 or redis.call('PTTL', k) < 0 then
    redis.call('PEXPIRE', k, ARGV[3])
  end
end
return {1, 0}
