//! The Lua scripts of the Redis store. Each touches the keys of one hash slot
//! only: those it is given in KEYS, and session keys it builds from a base
//! (ARGV) that carries the same hash tag, `{b<bucket>}`. Each declares itself
//! with a `#!lua` shebang, so that Redis Cluster refuses a key of another slot
//! ("Script attempted to access keys that do not hash to the same slot")
//! instead of letting it through, which the cluster tests prove.

use fred::types::scripts::Script;

const SHEBANG: &str = "#!lua\n";

// Every script takes its time from the store (TIME), never from the caller:
// instances whose clocks differ then apply the same rotation rules. `now` is in
// milliseconds; `us` (microseconds, CLOCK_US) orders a session's creation
// against a user-wide revocation mark, which may fall in the same millisecond.
const CLOCK: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"#;
const CLOCK_US: &str = r#"
local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
"#;

// Records ended sessions in their bucket's revocation log (a sorted set scored
// by the time they ended, trimmed to the retention) and publishes them on the
// bucket's sharded channel (SPUBLISH: it stays within the shard, so it works
// on a cluster as on one server): what every instance in instant mode
// follows. `log` is both the key and the channel.
const ENDED: &str = r#"
local function ended(log, sids, now, keep)
  if #sids == 0 then return end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - keep)
  for _, sid in ipairs(sids) do redis.call('ZADD', log, now, sid) end
  redis.call('PEXPIRE', log, keep)
  redis.call('SPUBLISH', log, table.concat(sids, ' '))
end
"#;

// A user's sessions are ONE string key (`{b<n>}u:<user>`): their records one
// after the other, each `I2 length .. body`, with
//   body   = sid (22 bytes) .. STATE .. login country (2 bytes, "\0\0": none)
//            .. I2 length .. claims .. client
//   claims = the application's claims of a session created before they moved
//            into the refresh token; empty (length 0) in every new record
//   STATE  = generation, created (µs), last rotation, absolute expiry, idle
//            expiry (ms), request id: struct '>I4I7I6I6I6I4', 33 bytes
//   client = the store client's encoding (country, address, user-agent
//            summary), opaque here but for its first two bytes: a country
//            equal to the login country is stored as "=" (not twice).
// RedisStore::are_live reads this layout too, outside any script
// (`expiries` in mod.rs: a record's sid and STATE's two expiries), so a
// change to it is made in both places. Reading a session is one GET and
// writing it one SET, or a SETRANGE of its STATE in place when only that
// changes: each redis.call costs Redis about as
// much as a whole `return 1` script, so a rotation is TIME, GET and SETRANGE
// (plus, now and then, the key's expiry). A string has no size class
// to fall out of (a hash with one value over hash-max-listpack-value, 64 B,
// turns into a hashtable several times its size), and the user's index is the
// key itself. The key expires at the latest idle expiry of its sessions,
// rounded up to a step (1/16 of the idle lifetime, between 1 s and 1 h) so
// that most rotations keep the expiry (SET KEEPTTL) instead of setting it; a
// session past its idle or absolute expiry is dead to every script, and
// dropped by the next one that writes the key.
//
// Sessions written by the first layout (a hash per session, a sorted set
// index, the `rb` mark) keep working where they are until they expire: each
// script falls back to them (the `v1_*` parts, the first layout's code) for a
// session it does not find in the user's key; a rotation does so with a
// second script (V1_ROTATE), so that the first layout's keys and arguments
// cost the hot path nothing.
const RECORDS: &str = r#"
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
"#;

// KEYS: user, log, v1 index. ARGV: sid, max_age, idle, max_sessions, client,
// login country, v1 session key base, deadline, keep. A new record holds no
// claims (they travel in the refresh token): its claims length is 0.
// Returns {-1} past the deadline (the caller gave up), else
// {now, idle_expiry, absolute_expiry, evicted sids...}.
const CREATE: &str = r#"
local uk, log, ik, base, sid = KEYS[1], KEYS[2], KEYS[3], ARGV[7], ARGV[1]
if now > tonumber(ARGV[8]) then return {-1} end
local idle = tonumber(ARGV[3])
local abs = now + tonumber(ARGV[2])
local exp = math.min(now + idle, abs)
local max = tonumber(ARGV[4])
local lc = ARGV[6] ~= '' and ARGV[6] or '\0\0'
local body = sid .. struct.pack(STATE, 1, us, now, abs, exp, 0) .. lc
  .. '\0\0' .. client_of(ARGV[5], lc)
-- the user's other live sessions (dead ones are dropped), oldest first; the
-- new one is never a candidate
local v, live = redis.call('GET', uk) or '', {}
local kept = {}
for _, e in ipairs(each(v)) do
  if now < e[7] and now < e[8] and e[3] ~= sid then
    table.insert(kept, string.sub(v, e[1], e[2] - 1))
    table.insert(live, {e[5], e[3], #kept})
  end
end
-- sessions of the first layout count too
local old = redis.call('ZRANGE', ik, 0, -1, 'WITHSCORES')
for n = 1, #old, 2 do
  if redis.call('EXISTS', base .. old[n]) == 1 then
    table.insert(live, {tonumber(old[n + 1]), old[n]})
  else
    redis.call('ZREM', ik, old[n])
  end
end
table.sort(live, function(p, q) return p[1] < q[1] end)
local out, evicted = {now, exp, abs}, {}
for n = 1, #live + 1 - max do
  local e = live[n]
  if e[3] then kept[e[3]] = '' else redis.call('DEL', base .. e[2]); redis.call('ZREM', ik, e[2]) end
  table.insert(evicted, e[2])
  table.insert(out, e[2])
end
table.insert(kept, struct.pack('>I2', #body) .. body)
v = table.concat(kept)
save(uk, v, cover(v, step(idle)))
ended(log, evicted, now, tonumber(ARGV[9]))
return out
"#;

// What a rotation answers when it rotated (1) or replayed (2): one string,
// struct '>BI4I6I6I6' (answer, generation, rotated at, idle expiry, absolute
// expiry, ms), the login country (2 bytes, "\0\0": none), then the claims the
// record holds (sessions created before the claims moved into the refresh
// token; none otherwise). One string costs Redis less than a table of seven.
const SUCCESSOR: &str = r#"
local function successor(code, g, r, x, a, lc, claims)
  return struct.pack('>BI4I6I6I6', code, g, r, x, a) .. lc .. claims
end
"#;

// KEYS: user, log. ARGV: the numbers (eight u64, big-endian: generation,
// grace, idle, request id, deadline, keep, the presented token's iat in ms, how far
// ahead a lost write may be), client, sid. Returns -1 past the deadline, 0
// not found (ended), 3 reuse (the session is revoked), 4 a session of the
// first layout (the caller then runs V1_ROTATE: one EXISTS here spares an
// ended session that second round trip), else SUCCESSOR's string: 1 rotated,
// 2 replayed in the grace window.
//
// The hot path is TIME, GET and, when the client is the one recorded, a
// SETRANGE of the 33 bytes of STATE in place (a new client rewrites the key);
// it creates no closure and no table: Lua allocation (and the garbage
// collection Redis runs after scripts) costs about as much as a redis.call.
// The helpers are defined on the paths that need them. The numbers come as
// one packed argument: Redis makes a Lua string of every argument, and eight
// of them, each then parsed by tonumber, cost more than the GET.
const ROTATE: &str = r#"
local uk, log = KEYS[1], KEYS[2]
local sid = ARGV[3]
local p, grace, idle, rid, deadline, keep, iat, ahead = struct.unpack('>I8I8I8I8I8I8I8I8', ARGV[1])
if now > deadline then return -1 end
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
if not i then
  -- a session of the first layout, `<prefix>{b<n>}:<user>:s:<sid>` (the
  -- prefix has no braces: the first '}' closes the tag), or none
  local _, e = string.find(uk, '}u:', 1, true)
  if redis.call('EXISTS', string.sub(uk, 1, e - 2) .. ':' .. string.sub(uk, e + 1) .. ':s:' .. sid) == 1 then
    return 4
  end
  return 0
end
local g, c, r, a, x, q = struct.unpack('>I4I7I6I6I6I4', v, i + 24)
local lc = string.sub(v, i + 57, i + 58)
local n = struct.unpack('>I2', v, i + 59)
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
  if string.sub(v, i + 61 + n, j - 1) == client then
    redis.call('SETRANGE', uk, i + 23, state)
    if at then redis.call('PEXPIREAT', uk, at) end
  else
    local body = sid .. state .. lc .. string.sub(v, i + 59, i + 60 + n) .. client
    v = string.sub(v, 1, i - 1) .. struct.pack('>I2', #body) .. body .. string.sub(v, j)
    if at then redis.call('SET', uk, v, 'PXAT', at) else redis.call('SET', uk, v, 'KEEPTTL') end
  end
  return struct.pack('>BI4I6I6I6', 1, p + 1, now, exp, a) .. lc .. string.sub(v, i + 61, i + 60 + n)
elseif live and p + 1 == g and q == rid then
  -- the store client resent this very call (its reply was lost): answer as the first time
  return struct.pack('>BI4I6I6I6', 1, g, r, x, a) .. lc .. string.sub(v, i + 61, i + 60 + n)
elseif live and p + 1 == g and grace > 0 and now - r <= grace then
  return struct.pack('>BI4I6I6I6', 2, g, r, x, a) .. lc .. string.sub(v, i + 61, i + 60 + n)
end
-- dead (past its idle or absolute expiry) or reuse: the record goes
v = string.sub(v, 1, i - 1) .. string.sub(v, j)
if v == '' then redis.call('DEL', uk) else redis.call('SET', uk, v, 'KEEPTTL') end
if not live then return 0 end
"#;

// ROTATE's end, after ENDED: reuse.
const ROTATE_REUSED: &str = r#"
ended(log, {sid}, now, keep)
return 3
"#;

// The first layout's rotation, for a session ROTATE did not find in the
// user's key: the first layout's code, run as a script of its own (nothing
// writes a session of the first layout into a user's key, so the two steps
// cannot miss one). KEYS: v1 session, v1 index, v1 mark, log. ARGV:
// generation, grace, idle, sid, request id, deadline, keep, iat (ms), how far
// ahead, then the client as text: ip, country, user agent. Answers as ROTATE
// (never 4).
const V1_ROTATE: &str = r#"
local sk, ik, rbk, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local sid, keep = ARGV[4], tonumber(ARGV[7])
if now > tonumber(ARGV[6]) then return -1 end
local v = redis.call('HMGET', sk, 'g', 'r', 'a', 'x', 'cl', 'lc', 'c', 'q')
if not v[1] then return 0 end
local g, r, a, x = tonumber(v[1]), tonumber(v[2]), tonumber(v[3]), tonumber(v[4])
local lc = v[6]
if not lc or #lc ~= 2 then lc = '\0\0' end
local rb = redis.call('GET', rbk)
if rb and tonumber(v[7]) <= tonumber(rb) then
  -- ended by a logout everywhere that could not list it (its index entry was lost)
  redis.call('DEL', sk); redis.call('ZREM', ik, sid)
  ended(log, {sid}, now, keep)
  return 0
end
if now >= a or now >= x then
  redis.call('DEL', sk); redis.call('ZREM', ik, sid)
  return 0
end
local p = tonumber(ARGV[1])
local lost = p > g and p - g <= tonumber(ARGV[9]) and tonumber(ARGV[8]) + 999 >= r
if p == g or lost then
  local exp = math.min(now + tonumber(ARGV[3]), a)
  local set, gone = {'g', p + 1, 'r', now, 'x', exp, 'q', ARGV[5]}, {}
  for i, f in ipairs({'ip', 'cc', 'ua'}) do
    local val = ARGV[9 + i]
    if val ~= '' then table.insert(set, f); table.insert(set, val) else table.insert(gone, f) end
  end
  redis.call('HSET', sk, unpack(set))
  if #gone > 0 then redis.call('HDEL', sk, unpack(gone)) end
  redis.call('PEXPIREAT', sk, exp)
  return successor(1, p + 1, now, exp, a, lc, v[5])
elseif p + 1 == g and v[8] == ARGV[5] then
  return successor(1, g, r, x, a, lc, v[5])
elseif p + 1 == g and tonumber(ARGV[2]) > 0 and now - r <= tonumber(ARGV[2]) then
  return successor(2, g, r, x, a, lc, v[5])
end
redis.call('DEL', sk); redis.call('ZREM', ik, sid)
ended(log, {sid}, now, keep)
return 3
"#;

// KEYS: user, log, v1 session, v1 index. ARGV: sid, keep.
const REVOKE: &str = r#"
local v, n = redis.call('GET', KEYS[1]), 0
local i, j
if v then i, j = find(v, ARGV[1]) end
if i then
  local a, x = struct.unpack('>I6I6', v, i + 24 + 17)
  if now < a and now < x then n = 1 end
  save(KEYS[1], string.sub(v, 1, i - 1) .. string.sub(v, j))
else
  n = redis.call('DEL', KEYS[3])
  redis.call('ZREM', KEYS[4], ARGV[1])
end
if n > 0 then ended(KEYS[2], {ARGV[1]}, now, tonumber(ARGV[2])) end
return n
"#;

// KEYS: user, log, v1 index, v1 mark. ARGV: v1 session key base, v1 mark
// lifetime, keep. The v1 mark ends also the first layout's sessions its index
// no longer lists (an evicting Redis may have dropped it); the user's key is
// its own index, so its sessions cannot hide.
const REVOKE_ALL: &str = r#"
local gone = {}
local v = redis.call('GET', KEYS[1])
if v then
  for _, e in ipairs(each(v)) do
    if now < e[7] and now < e[8] then table.insert(gone, e[3]) end
  end
  redis.call('DEL', KEYS[1])
end
redis.call('SET', KEYS[4], us, 'PX', ARGV[2])
for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  if redis.call('DEL', ARGV[1] .. m) == 1 then table.insert(gone, m) end
end
redis.call('DEL', KEYS[3])
ended(KEYS[2], gone, now, tonumber(ARGV[3]))
return gone
"#;

// KEYS: user, v1 index, v1 mark. ARGV: v1 session key base.
// A flat list per live session: sid, created (µs), last used (ms), login
// country, client (this layout's encoding; empty for the first layout's), and
// the first layout's ip, country, user agent.
const LIST: &str = r#"
local out = {}
local v = redis.call('GET', KEYS[1])
if v then
  for _, e in ipairs(each(v)) do
    if now < e[7] and now < e[8] then
      local i = e[1]
      local n = struct.unpack('>I2', v, i + 59)
      table.insert(out, e[3]); table.insert(out, e[5]); table.insert(out, e[6])
      table.insert(out, string.sub(v, i + 57, i + 58))
      table.insert(out, string.sub(v, i + 61 + n, e[2] - 1))
      table.insert(out, ''); table.insert(out, ''); table.insert(out, '')
    end
  end
end
local rb = tonumber(redis.call('GET', KEYS[3]) or '-1')
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local s = redis.call('HMGET', ARGV[1] .. m, 'c', 'r', 'ip', 'cc', 'ua')
  if s[1] and tonumber(s[1]) > rb then
    table.insert(out, m); table.insert(out, tonumber(s[1])); table.insert(out, s[2])
    table.insert(out, ''); table.insert(out, '')
    table.insert(out, s[3] or ''); table.insert(out, s[4] or ''); table.insert(out, s[5] or '')
  else
    redis.call('ZREM', KEYS[2], m)
  end
end
return out
"#;

// Whether a session is live: in the user's key and within its idle and
// absolute expiry; or, for one of the first layout, its hash exists and no
// logout everywhere came after its creation.
const LIVE: &str = r#"
local function live(uk, sid, sk, rbk)
  local v = redis.call('GET', uk)
  local i
  if v then i = find(v, sid) end
  if i then
    local a, x = struct.unpack('>I6I6', v, i + 24 + 17)
    if now < a and now < x then return 1 end
    return 0
  end
  local c = redis.call('HGET', sk, 'c')
  if not c then return 0 end
  local rb = redis.call('GET', rbk)
  if rb and tonumber(c) <= tonumber(rb) then return 0 end
  return 1
end
"#;

// KEYS: user, v1 session, v1 mark. ARGV: sid. For a session whose record
// the caller did not find in the user's key as read with `MGET`
// (RedisStore::are_live reads the records itself): ended, or of the first
// layout.
const IS_LIVE: &str = r#"
return live(KEYS[1], ARGV[1], KEYS[2], KEYS[3])
"#;

// KEYS: account + network counter, account counter. ARGV: max per network,
// max per account, window. Counts the attempt, or refuses it ({0, pttl})
// without counting when a limit is reached.
const BEGIN_LOGIN: &str = r#"
local limits = {tonumber(ARGV[1]), tonumber(ARGV[2])}
for i, k in ipairs(KEYS) do
  if tonumber(redis.call('GET', k) or '0') >= limits[i] then
    return {0, math.max(redis.call('PTTL', k), 1)}
  end
end
for _, k in ipairs(KEYS) do
  if redis.call('INCR', k) == 1 or redis.call('PTTL', k) < 0 then
    redis.call('PEXPIRE', k, ARGV[3])
  end
end
return {1, 0}
"#;

// KEYS: account + network counter, account counter. ARGV: 1 succeeded
// (clear the pair), 0 undecided (take the attempt back from the pair).
const END_LOGIN: &str = r#"
if ARGV[1] == '1' then redis.call('DEL', KEYS[1]) end
for i, k in ipairs(KEYS) do
  if (i == 2 or ARGV[1] ~= '1') and redis.call('EXISTS', k) == 1 then
    if redis.call('DECR', k) <= 0 then redis.call('DEL', k) end
  end
end
return 1
"#;

// KEYS: logs (one on a cluster: a script may touch one slot only; every
// bucket's at once on one server). ARGV: keep. The logs' live entries: sid,
// milliseconds left to keep it.
const CATCH_UP: &str = r#"
local keep, out = tonumber(ARGV[1]), {}
for _, log in ipairs(KEYS) do
  local entries = redis.call('ZRANGEBYSCORE', log, now - keep, '+inf', 'WITHSCORES')
  for i = 1, #entries, 2 do
    table.insert(out, entries[i]); table.insert(out, keep - (now - tonumber(entries[i + 1])))
  end
end
return out
"#;

/// The store's scripts, loaded by SHA and reloaded where a node lacks them
/// (a promoted replica's script cache starts empty).
pub(super) struct Scripts {
    pub(super) create: Script,
    pub(super) rotate: Script,
    pub(super) v1_rotate: Script,
    pub(super) revoke: Script,
    pub(super) revoke_all: Script,
    pub(super) list: Script,
    pub(super) is_live: Script,
    pub(super) begin_login: Script,
    pub(super) end_login: Script,
    pub(super) catch_up: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        // `#!lua` (no flags): Redis then checks that a script touches the
        // keys of one slot only, declared or not (without it, Redis 7 lets
        // an undeclared key of another slot through if the node has it).
        let timed = |body: &str| Script::from_lua(format!("{SHEBANG}{CLOCK}{ENDED}{body}"));
        let sessions =
            |body: &str| Script::from_lua(format!("{SHEBANG}{CLOCK}{ENDED}{RECORDS}{body}"));
        let sessions_us = |body: &str| {
            Script::from_lua(format!("{SHEBANG}{CLOCK}{CLOCK_US}{ENDED}{RECORDS}{body}"))
        };
        let plain = |body: &str| Script::from_lua(format!("{SHEBANG}{body}"));
        Self {
            create: sessions_us(CREATE),
            // ENDED only where a session ends: a closure per call otherwise
            rotate: Script::from_lua(format!("{SHEBANG}{CLOCK}{ROTATE}{ENDED}{ROTATE_REUSED}")),
            v1_rotate: Script::from_lua(format!("{SHEBANG}{CLOCK}{ENDED}{SUCCESSOR}{V1_ROTATE}")),
            revoke: sessions(REVOKE),
            revoke_all: sessions_us(REVOKE_ALL),
            list: sessions(LIST),
            is_live: sessions(&format!("{LIVE}{IS_LIVE}")),
            begin_login: plain(BEGIN_LOGIN),
            end_login: plain(END_LOGIN),
            catch_up: timed(CATCH_UP),
        }
    }
}
