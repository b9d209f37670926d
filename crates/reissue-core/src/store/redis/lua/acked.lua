-- KEYS: acknowledgement sets of ended sessions (one bucket's). ARGV:
-- instance ids. Returns those that have not acknowledged every one.
local out = {}
for _, id in ipairs(ARGV) do
  for _, k in ipairs(KEYS) do
    if redis.call('SISMEMBER', k, id) == 0 then table.insert(out, id); break end
  end
end
return out
