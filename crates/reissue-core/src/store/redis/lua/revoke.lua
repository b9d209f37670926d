-- KEYS: user, log. ARGV: sid, keep, always ('1': log the sid even if the
-- session is gone: after a reuse, a write for the caller's WAIT to confirm).
-- Returns 1 if the session was live.
local v, n = redis.call('GET', KEYS[1]), 0
local i, j
if v then i, j = find(v, ARGV[1]) end
if i then
  local a, x = struct.unpack('>I6I6', v, i + 24 + 17)
  if now < a and now < x then n = 1 end
  save(KEYS[1], string.sub(v, 1, i - 1) .. string.sub(v, j))
end
if n > 0 or ARGV[3] == '1' then ended(KEYS[2], {ARGV[1]}, now, tonumber(ARGV[2])) end
return n
