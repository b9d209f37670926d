-- KEYS: user, log. ARGV: sid, max_age, idle, max_sessions, client, login
-- country, deadline, keep. Returns {-1, now} past the deadline (the caller
-- gave up; its store clock learns from `now`), else {now, idle_expiry,
-- absolute_expiry, evicted sids...}.
local uk, log, sid = KEYS[1], KEYS[2], ARGV[1]
if now > tonumber(ARGV[7]) then return {-1, now} end
local idle = tonumber(ARGV[3])
local abs = now + tonumber(ARGV[2])
local exp = math.min(now + idle, abs)
local max = tonumber(ARGV[4])
local lc = ARGV[6] ~= '' and ARGV[6] or '\0\0'
local body = sid .. struct.pack(STATE, 1, us, now, abs, exp, 0) .. lc .. client_of(ARGV[5], lc)
-- the user's other live sessions (dead ones are dropped), oldest first; the
-- new one is never a candidate
local v, live, kept = redis.call('GET', uk) or '', {}, {}
for _, e in ipairs(each(v)) do
  if now < e[7] and now < e[8] and e[3] ~= sid then
    table.insert(kept, string.sub(v, e[1], e[2] - 1))
    table.insert(live, {e[5], e[3], #kept})
  end
end
table.sort(live, function(p, q) return p[1] < q[1] end)
local out, evicted = {now, exp, abs}, {}
for n = 1, #live + 1 - max do
  local e = live[n]
  kept[e[3]] = ''
  table.insert(evicted, e[2])
  table.insert(out, e[2])
end
table.insert(kept, struct.pack('>I2', #body) .. body)
v = table.concat(kept)
save(uk, v, cover(v, step(idle)))
ended(log, evicted, now, tonumber(ARGV[8]))
return out
