-- KEYS: account + network counter, account counter. ARGV: 1 succeeded
-- (clear the pair), 0 undecided (take the attempt back from the pair).
if ARGV[1] == '1' then redis.call('DEL', KEYS[1]) end
for i, k in ipairs(KEYS) do
  if (i == 2 or ARGV[1] ~= '1') and redis.call('EXISTS', k) == 1 then
    if redis.call('DECR', k) <= 0 then redis.call('DEL', k) end
  end
end
return 1
