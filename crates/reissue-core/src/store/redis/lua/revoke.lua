-- KEYS: user, log. ARGV: sid, keep, always ('1': log the sid even if the
-- session is gone: after a reuse, a write for the caller's WAIT to confirm).
-- Returns 1 if the session was live; else 2 if it ended within the log's
-- retention (a retried logout, which must wait for the lease holders again:
-- leases.rs), else 0.
local v, n = redis.call('GET', KEYS[1]), 0
local i, j
if v then i, j = find(v, ARGV[1]) end
if i then
  local a, x = struct.unpack('>I6I6', v, i + 24 + 17)
  if now < a and now < x then n = 1 end
  save(KEYS[1], string.sub(v, 1, i - 1) .. string.sub(v, j))
end
-- A session still in the log is logged and published again, so that the
-- lease holders acknowledge it again.
if n == 0 and redis.call('ZSCORE', KEYS[2], ARGV[1]) then n = 2 end
if n > 0 or ARGV[3] == '1' then ended(KEYS[2], {ARGV[1]}, now, tonumber(ARGV[2])) end
return n
