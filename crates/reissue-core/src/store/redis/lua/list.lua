-- KEYS: user. A flat list per live session: sid, created (µs), last used
-- (ms), login country, client (record.rs decodes it).
local out = {}
local v = redis.call('GET', KEYS[1])
if v then
  for _, e in ipairs(each(v)) do
    if now < e[7] and now < e[8] then
      table.insert(out, e[3]); table.insert(out, e[5]); table.insert(out, e[6])
      table.insert(out, string.sub(v, e[1] + 57, e[1] + 58))
      table.insert(out, string.sub(v, e[1] + 59, e[2] - 1))
    end
  end
end
return out
