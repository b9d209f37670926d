-- KEYS: the attempt's counters (one slot). ARGV: 'clear' to clear the first
-- (a success on the attempt's own pair or device) and take the attempt back
-- from the others, 'undo' to take it back from all.
for i, k in ipairs(KEYS) do
  if i == 1 and ARGV[1] == 'clear' then
    redis.call('DEL', k)
  elseif redis.call('EXISTS', k) == 1 then
    if redis.call('DECR', k) <= 0 then redis.call('DEL', k) end
  end
end
return 1
