-- KEYS: user, log. ARGV: the numbers (eight u64, big-endian: generation,
-- grace (the replay cap, ms; 2^53 when there is none), idle, request id,
-- deadline, keep, the presented token's iat in ms, how far ahead a lost
-- write may be), client, sid. Returns {-1, now} past the deadline (the
-- caller's store clock learns from `now`), 0 not found (ended), 3 reuse (the
-- session is revoked; the end of the script is rotate_reused.lua, after
-- ended.lua), else one string, struct '>BI4I6I6I6' (1 rotated or 2
-- replayed, its successor unused,
-- generation, rotated at, idle expiry, absolute expiry, ms) then the login
-- country (2 bytes, "\0\0": none). One string costs Redis less than a table.
--
-- The hot path is TIME, GET and, when the client is the one recorded, a
-- SETRANGE of the 33 bytes of STATE in place (a new client rewrites the key);
-- it creates no closure and no table: Lua allocation (and the garbage
-- collection Redis runs after scripts) costs about as much as a redis.call.
-- So it repeats records.lua's few lines it needs rather than loading them.
-- The numbers come as one packed argument: Redis makes a Lua string of every
-- argument, and eight of them, each then parsed by tonumber, cost more than
-- the GET.
local uk, log = KEYS[1], KEYS[2]
local sid = ARGV[3]
local p, grace, idle, rid, deadline, keep, iat, ahead = struct.unpack('>I8I8I8I8I8I8I8I8', ARGV[1])
if now > deadline then return {-1, now} end
local v = redis.call('GET', uk)
local i, j
if v then
  local at, n = 1, #v
  while at < n do
    local len = struct.unpack('>I2', v, at)
    if string.sub(v, at + 2, at + 23) == sid then i, j = at, at + 2 + len; break end
    at = at + 2 + len
  end
end
if not i then return 0 end
local g, c, r, a, x, q = struct.unpack('>I4I7I6I6I6I4', v, i + 24)
local lc = string.sub(v, i + 57, i + 58)
-- A token ahead of the store, signed by us, can only come from rotations the
-- store lost (a failover before they reached the replica): bounded in how far
-- ahead, and only if it was minted no earlier than the store's newest state.
local live = now < a and now < x
if live and (p == g or (p > g and p - g <= ahead and iat + 999 >= r)) then
  local exp = math.min(now + idle, a)
  local client = ARGV[2]
  if lc ~= '\0\0' and string.sub(client, 1, 2) == lc then client = '=' .. string.sub(client, 3) end
  local state = struct.pack('>I4I7I6I6I6I4', p + 1, c, now, a, exp, rid)
  local s = math.min(math.max(math.floor(idle / 16), 1000), 3600000)
  local at
  if math.ceil(exp / s) > math.ceil(x / s) then
    -- past the key's expiry step: cover every session's idle expiry
    at = exp
    local k, len = 1, #v
    while k < len do
      if k ~= i then
        local e = struct.unpack('>I6', v, k + 2 + 45)
        if e > at then at = e end
      end
      k = k + 2 + struct.unpack('>I2', v, k)
    end
    at = math.ceil(at / s) * s
  end
  if string.sub(v, i + 59, j - 1) == client then
    redis.call('SETRANGE', uk, i + 23, state)
    if at then redis.call('PEXPIREAT', uk, at) end
  else
    local body = sid .. state .. lc .. client
    v = string.sub(v, 1, i - 1) .. struct.pack('>I2', #body) .. body .. string.sub(v, j)
    if at then redis.call('SET', uk, v, 'PXAT', at) else redis.call('SET', uk, v, 'KEEPTTL') end
  end
  return struct.pack('>BI4I6I6I6', 1, p + 1, now, exp, a) .. lc
elseif live and p + 1 == g and q == rid then
  -- the store client resent this very call (its reply was lost): answer as the first time
  return struct.pack('>BI4I6I6I6', 1, g, r, x, a) .. lc
elseif live and p + 1 == g and grace > 0 and now - r <= grace then
  -- the predecessor of the current generation: its successor (g) has never
  -- been presented, or g would have moved on. Replayable until then.
  return struct.pack('>BI4I6I6I6', 2, g, r, x, a) .. lc
end
-- dead (past its idle or absolute expiry) or reuse: the record goes
v = string.sub(v, 1, i - 1) .. string.sub(v, j)
if v == '' then redis.call('DEL', uk) else redis.call('SET', uk, v, 'KEEPTTL') end
if not live then return 0 end
