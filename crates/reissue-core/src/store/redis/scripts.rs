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
// milliseconds; `us` (microseconds) orders a session's creation against a
// user-wide revocation mark, which may fall in the same millisecond.
const CLOCK: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
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

// KEYS: session, index, log. ARGV: sid, max_age, idle, max_sessions, ip,
// country, user agent, claims, session key base, deadline, keep.
// Returns {-1} past the deadline (the caller gave up), else
// {now, idle_expiry, absolute_expiry, evicted sids...}.
const CREATE: &str = r#"
local sk, ik, log, base = KEYS[1], KEYS[2], KEYS[3], ARGV[9]
if now > tonumber(ARGV[10]) then return {-1} end
local abs = now + tonumber(ARGV[2])
local exp = math.min(now + tonumber(ARGV[3]), abs)
local max = tonumber(ARGV[4])
local fields = {'g', 1, 'r', now, 'a', abs, 'c', us, 'x', exp, 'cl', ARGV[8]}
if ARGV[5] ~= '' then table.insert(fields, 'ip'); table.insert(fields, ARGV[5]) end
if ARGV[6] ~= '' then
  table.insert(fields, 'cc'); table.insert(fields, ARGV[6])
  table.insert(fields, 'lc'); table.insert(fields, ARGV[6])
end
if ARGV[7] ~= '' then table.insert(fields, 'ua'); table.insert(fields, ARGV[7]) end
redis.call('HSET', sk, unpack(fields))
redis.call('PEXPIREAT', sk, exp)
redis.call('ZADD', ik, us, ARGV[1])
if redis.call('PTTL', ik) < abs - now then redis.call('PEXPIREAT', ik, abs) end
-- the user's other live sessions, oldest first; the new one is never a candidate
local live = {}
for _, m in ipairs(redis.call('ZRANGE', ik, 0, -1)) do
  if m ~= ARGV[1] then
    if redis.call('EXISTS', base .. m) == 1 then table.insert(live, m) else redis.call('ZREM', ik, m) end
  end
end
local out, evicted = {now, exp, abs}, {}
for i = 1, #live + 1 - max do
  redis.call('DEL', base .. live[i])
  redis.call('ZREM', ik, live[i])
  table.insert(evicted, live[i])
  table.insert(out, live[i])
end
ended(log, evicted, now, tonumber(ARGV[11]))
return out
"#;

// KEYS: session, index, user-wide mark, log. ARGV: generation, grace, idle,
// ip, country, user agent, sid, request id, deadline, keep, the presented
// token's iat (ms), how far ahead a lost write may be.
// Returns {-1} past the deadline, {0} not found, {1, ...} rotated, {2, ...}
// replayed in the grace window, {3} reuse (session revoked). The successor is
// {gen, rotated_at, idle_exp, abs, claims, login_country}.
const ROTATE: &str = r#"
local sk, ik, rbk, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local sid, keep = ARGV[7], tonumber(ARGV[10])
if now > tonumber(ARGV[9]) then return {-1} end
local v = redis.call('HMGET', sk, 'g', 'r', 'a', 'x', 'cl', 'lc', 'c', 'q')
if not v[1] then return {0} end
local g, r, a, x = tonumber(v[1]), tonumber(v[2]), tonumber(v[3]), tonumber(v[4])
local rb = redis.call('GET', rbk)
if rb and tonumber(v[7]) <= tonumber(rb) then
  -- ended by a logout everywhere that could not list it (its index entry was lost)
  redis.call('DEL', sk); redis.call('ZREM', ik, sid)
  ended(log, {sid}, now, keep)
  return {0}
end
if now >= a or now >= x then
  redis.call('DEL', sk); redis.call('ZREM', ik, sid)
  return {0}
end
local p = tonumber(ARGV[1])
-- A token ahead of the store, signed by us, can only come from rotations the
-- store lost (a failover before they reached the replica): bounded in how far
-- ahead, and only if it was minted no earlier than the store's newest state.
local lost = p > g and p - g <= tonumber(ARGV[12]) and tonumber(ARGV[11]) + 999 >= r
if p == g or lost then
  local exp = math.min(now + tonumber(ARGV[3]), a)
  -- one HSET and at most one HDEL: each redis.call from Lua costs more than the work it does
  local set, gone = {'g', p + 1, 'r', now, 'x', exp, 'q', ARGV[8]}, {}
  for i, f in ipairs({'ip', 'cc', 'ua'}) do
    local val = ARGV[3 + i]
    if val ~= '' then table.insert(set, f); table.insert(set, val) else table.insert(gone, f) end
  end
  redis.call('HSET', sk, unpack(set))
  if #gone > 0 then redis.call('HDEL', sk, unpack(gone)) end
  redis.call('PEXPIREAT', sk, exp)
  return {1, p + 1, now, exp, a, v[5], v[6] or ''}
elseif p + 1 == g and v[8] == ARGV[8] then
  -- the store client resent this very call (its reply was lost): answer as the first time
  return {1, g, r, x, a, v[5], v[6] or ''}
elseif p + 1 == g and tonumber(ARGV[2]) > 0 and now - r <= tonumber(ARGV[2]) then
  return {2, g, r, x, a, v[5], v[6] or ''}
end
redis.call('DEL', sk); redis.call('ZREM', ik, sid)
ended(log, {sid}, now, keep)
return {3}
"#;

// KEYS: session, index, log. ARGV: sid, keep.
const REVOKE: &str = r#"
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if n > 0 then ended(KEYS[3], {ARGV[1]}, now, tonumber(ARGV[2])) end
return n
"#;

// KEYS: index, user-wide mark, log. ARGV: session key base, mark lifetime, keep.
// The mark ends also the sessions the index no longer lists (an evicting
// Redis may have dropped it): rotation and liveness checks compare against it.
const REVOKE_ALL: &str = r#"
redis.call('SET', KEYS[2], us, 'PX', ARGV[2])
local gone = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('DEL', ARGV[1] .. m) == 1 then table.insert(gone, m) end
end
redis.call('DEL', KEYS[1])
ended(KEYS[3], gone, now, tonumber(ARGV[3]))
return gone
"#;

// KEYS: index, user-wide mark. ARGV: session key base.
// A flat list: sid, created, last_used, ip, country, ua per live session, oldest first.
const LIST: &str = r#"
local rb = tonumber(redis.call('GET', KEYS[2]) or '-1')
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local v = redis.call('HMGET', ARGV[1] .. m, 'c', 'r', 'ip', 'cc', 'ua')
  if v[1] and tonumber(v[1]) > rb then
    table.insert(out, m); table.insert(out, math.floor(tonumber(v[1]) / 1000)); table.insert(out, v[2])
    table.insert(out, v[3] or ''); table.insert(out, v[4] or ''); table.insert(out, v[5] or '')
  else
    redis.call('ZREM', KEYS[1], m)
  end
end
return out
"#;

// Whether a session is live: it exists, and no logout everywhere came after
// its creation.
const LIVE: &str = r#"
local function live(sk, rbk)
  local c = redis.call('HGET', sk, 'c')
  if not c then return 0 end
  local rb = redis.call('GET', rbk)
  if rb and tonumber(c) <= tonumber(rb) then return 0 end
  return 1
end
"#;

// KEYS: session, user-wide mark.
const IS_LIVE: &str = r#"
return live(KEYS[1], KEYS[2])
"#;

// KEYS: session, user-wide mark, for each session (of one slot on a
// cluster). One answer per pair, in order.
const ARE_LIVE: &str = r#"
local out = {}
for i = 1, #KEYS, 2 do out[#out + 1] = live(KEYS[i], KEYS[i + 1]) end
return out
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
    pub(super) revoke: Script,
    pub(super) revoke_all: Script,
    pub(super) list: Script,
    pub(super) is_live: Script,
    pub(super) are_live: Script,
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
        let plain = |body: &str| Script::from_lua(format!("{SHEBANG}{body}"));
        Self {
            create: timed(CREATE),
            rotate: timed(ROTATE),
            revoke: timed(REVOKE),
            revoke_all: timed(REVOKE_ALL),
            list: plain(LIST),
            is_live: plain(&format!("{LIVE}{IS_LIVE}")),
            are_live: plain(&format!("{LIVE}{ARE_LIVE}")),
            begin_login: plain(BEGIN_LOGIN),
            end_login: plain(END_LOGIN),
            catch_up: timed(CATCH_UP),
        }
    }
}
