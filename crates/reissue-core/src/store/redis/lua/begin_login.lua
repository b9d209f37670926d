-- KEYS: the attempt's counters (one slot). ARGV: each counter's limit, then
-- the window (ms). Counts the attempt on every counter, or refuses it
-- ({0, pttl}) without counting when one has reached its limit.
for i, k in ipairs(KEYS) do
  if tonumber(redis.call('GET', k) or '0') >= tonumber(ARGV[i]) then
    return {0, math.max(redis.call('PTTL', k), 1)}
  end
end
local window = ARGV[#KEYS + 1]
for _, k in ipairs(KEYS) do
  if redis.call('INCR', k) == 1 or redis.call('PTTL', k) < 0 then
    redis.call('PEXPIRE', k, window)
  end
end
return {1, 0}
