-- A user's sessions are ONE string key (`{b<n>}u:<user>`): their records one
-- after the other, each `I2 length .. body`, with
--   body   = sid (22 bytes) .. STATE .. login country (2 bytes, "\0\0": none)
--            .. client
--   STATE  = generation, created (µs), last rotation, absolute expiry, idle
--            expiry (ms), request id: struct '>I4I7I6I6I6I4', 33 bytes
--   client = the store's encoding (record.rs: country, address, user-agent
--            summary), opaque here but for its first two bytes: a country
--            equal to the login country is stored as "=" (not twice).
-- So in a record at i: sid i+2..i+23, STATE i+24..i+56, login country
-- i+57..i+58, client i+59 to the record's end.
-- record.rs reads this layout too, outside any script (`expiries`: a
-- record's sid and STATE's two expiries), so a change to it is made in both
-- places.
--
-- Reading a session is one GET and writing it one SET, or a SETRANGE of its
-- STATE in place when only that changes: each redis.call costs Redis about as
-- much as a whole `return 1` script, so a rotation is TIME, GET and SETRANGE
-- (plus, now and then, the key's expiry). A string has no size class to fall
-- out of (a hash with one value over hash-max-listpack-value, 64 B, turns into
-- a hashtable several times its size), and the user's index is the key
-- itself. The key expires at the latest idle expiry of its sessions, rounded
-- up to a step (1/16 of the idle lifetime, between 1 s and 1 h) so that most
-- rotations keep the expiry (SET KEEPTTL) instead of setting it; a session
-- past its idle or absolute expiry is dead to every script, and dropped by
-- the next one that writes the key.
local STATE = '>I4I7I6I6I6I4'
-- sid's record in v: the position of its length prefix and the position past it
local function find(v, sid)
  local i, n = 1, #v
  while i < n do
    local len = struct.unpack('>I2', v, i)
    if string.sub(v, i + 2, i + 23) == sid then return i, i + 2 + len end
    i = i + 2 + len
  end
end
-- every record: {i, j, sid, g, c, r, a, x}
local function each(v)
  local out, i, n = {}, 1, #v
  while i < n do
    local len = struct.unpack('>I2', v, i)
    local g, c, r, a, x = struct.unpack(STATE, v, i + 24)
    table.insert(out, {i, i + 2 + len, string.sub(v, i + 2, i + 23), g, c, r, a, x})
    i = i + 2 + len
  end
  return out
end
local function step(idle)
  return math.min(math.max(math.floor(idle / 16), 1000), 3600000)
end
local function ceil_to(t, s) return math.ceil(t / s) * s end
-- Writes the user's key: DEL when no session is left; else SET, with the
-- expiry `at` (PXAT) or, when nil, the one it has (KEEPTTL).
local function save(uk, v, at)
  if v == '' then redis.call('DEL', uk)
  elseif at then redis.call('SET', uk, v, 'PXAT', at)
  else redis.call('SET', uk, v, 'KEEPTTL') end
end
-- The expiry that covers every session of v: the latest idle expiry, rounded up.
local function cover(v, s)
  local m = 0
  for _, e in ipairs(each(v)) do if e[8] > m then m = e[8] end end
  return ceil_to(m, s)
end
local function client_of(client, lc)
  if lc ~= '\0\0' and string.sub(client, 1, 2) == lc then return '=' .. string.sub(client, 3) end
  return client
end
