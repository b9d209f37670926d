//! The Redis store, on fred. Every operation that touches more than one key,
//! or reads then writes, is one Lua script (EVALSHA): atomic under any
//! concurrency and across any number of application instances, and one round
//! trip per operation.
//!
//! Keys (prefix `reissue:` by default; `{..}` is the cluster hash tag, so one
//! user's keys share a slot and the scripts also run on Redis Cluster):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `reissue:{<user>}:s:<sid>` | hash | one session: generation, times, client, claims |
//! | `reissue:{<user>}:i` | sorted set | the user's session ids, scored by login time |
//! | `reissue:{<user>}:rb` | string | "every session created before this was revoked" (µs), set by logout-all |
//! | `reissue:f:{<account digest>}` | string | login attempts on an account, from all networks |
//! | `reissue:f:{<account digest>}:<network>` | string | login attempts on an account from one network |
//! | `reissue:rv` | sorted set | the revocation log: ended sessions by the time they ended; also the pub/sub channel |
//!
//! Every key has a TTL: a session's is its idle lifetime (capped by its
//! absolute one), renewed by each reissue; the index outlives its newest
//! session; the user-wide mark lives as long as a session can; the log keeps
//! an entry for the access-token lifetime.
//!
//! Time is Redis's own (`TIME` inside each script), so instances whose clocks
//! differ apply the same rotation rules. The revocation log is one key for all
//! users, so the scripts that end sessions touch two hash slots: they run on a
//! single server or behind Sentinel, and fail loudly (`CROSSSLOT`) on Cluster.

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use fred::interfaces::{EventInterface, PubsubInterface};
use fred::prelude::{Builder, Client, ClientLike, Config, Pool, ReconnectPolicy};
use fred::types::Value;
use fred::types::scripts::Script;

use super::{
    Admission, AttemptEnd, ClientMeta, Created, LoginAttempt, NewSession, RefreshStore, Retention,
    RotateRequest, Rotation, SessionInfo, Successor,
};
use crate::revocation::Revocations;
use crate::{Country, Error, Result, SessionId};

// Every script takes its time from the store (TIME), never from the caller:
// instances whose clocks differ then apply the same rotation rules. `now` is in
// milliseconds; `us` (microseconds) orders a session's creation against a
// user-wide revocation mark, which may fall in the same millisecond.
const CLOCK: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
"#;

// Records ended sessions in the revocation log (a sorted set scored by the
// time they ended, trimmed to the retention) and publishes them: what every
// instance in instant mode follows. `log` is both the key and the channel.
const ENDED: &str = r#"
local function ended(log, sids, now, keep)
  if #sids == 0 then return end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - keep)
  for _, sid in ipairs(sids) do redis.call('ZADD', log, now, sid) end
  redis.call('PEXPIRE', log, keep)
  redis.call('PUBLISH', log, table.concat(sids, ' '))
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
// ip, country, user agent, sid, request id, deadline, keep.
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
if p == g then
  local exp = math.min(now + tonumber(ARGV[3]), a)
  -- one HSET and at most one HDEL: each redis.call from Lua costs more than the work it does
  local set, gone = {'g', g + 1, 'r', now, 'x', exp, 'q', ARGV[8]}, {}
  for i, f in ipairs({'ip', 'cc', 'ua'}) do
    local val = ARGV[3 + i]
    if val ~= '' then table.insert(set, f); table.insert(set, val) else table.insert(gone, f) end
  end
  redis.call('HSET', sk, unpack(set))
  if #gone > 0 then redis.call('HDEL', sk, unpack(gone)) end
  redis.call('PEXPIREAT', sk, exp)
  return {1, g + 1, now, exp, a, v[5], v[6] or ''}
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

// KEYS: session, user-wide mark.
const IS_LIVE: &str = r#"
local c = redis.call('HGET', KEYS[1], 'c')
if not c then return 0 end
local rb = redis.call('GET', KEYS[2])
if rb and tonumber(c) <= tonumber(rb) then return 0 end
return 1
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

// KEYS: log. ARGV: keep. The log's live entries: sid, milliseconds left to keep it.
const CATCH_UP: &str = r#"
local keep, out = tonumber(ARGV[1]), {}
local entries = redis.call('ZRANGEBYSCORE', KEYS[1], now - keep, '+inf', 'WITHSCORES')
for i = 1, #entries, 2 do
  table.insert(out, entries[i]); table.insert(out, keep - (now - tonumber(entries[i + 1])))
end
return out
"#;

struct Scripts {
    create: Script,
    rotate: Script,
    revoke: Script,
    revoke_all: Script,
    list: Script,
    is_live: Script,
    begin_login: Script,
    end_login: Script,
    catch_up: Script,
}

impl Scripts {
    fn new() -> Self {
        let timed = |body: &str| Script::from_lua(format!("{CLOCK}{ENDED}{body}"));
        Self {
            create: timed(CREATE),
            rotate: timed(ROTATE),
            revoke: timed(REVOKE),
            revoke_all: timed(REVOKE_ALL),
            list: Script::from_lua(LIST),
            is_live: Script::from_lua(IS_LIVE),
            begin_login: Script::from_lua(BEGIN_LOGIN),
            end_login: Script::from_lua(END_LOGIN),
            catch_up: timed(CATCH_UP),
        }
    }
}

/// A [`RefreshStore`] on Redis, through a fred connection pool. Reconnects by
/// itself; while Redis is unreachable or hung, each operation fails with
/// [`Error::Unavailable`] within the command timeout instead of hanging, and a
/// rotation or login that reaches Redis after its caller gave up is refused
/// by the script rather than executed late.
///
/// Redis must not evict keys (`maxmemory-policy noeviction`): an evicted
/// session index would hide sessions from "log out everywhere". The store
/// checks the policy when it connects (see
/// [`RedisStoreBuilder::require_noeviction`]).
pub struct RedisStore {
    pool: Pool,
    prefix: String,
    scripts: Arc<Scripts>,
    command_timeout: Duration,
    /// The store's clock minus ours, in ms, from the last reply that told it:
    /// turns "give up after the command timeout" into a deadline in the
    /// store's time.
    clock_offset_ms: Arc<AtomicI64>,
    revoked_keep_ms: AtomicU64,
    sessions_keep_ms: AtomicU64,
    eviction: Eviction,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("eviction", &self.eviction)
            .finish_non_exhaustive()
    }
}

/// What the store found out about Redis's eviction policy when it connected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Eviction {
    /// `maxmemory-policy noeviction`: keys are never evicted.
    Never,
    /// A policy that may evict keys (every key of the store has a TTL, so
    /// `volatile-*` policies evict them too).
    May {
        /// The policy, e.g. `allkeys-lru`.
        policy: String,
    },
    /// `CONFIG GET` was refused (managed Redis often disables it).
    Unknown,
}

/// Configures a [`RedisStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    pool_size: usize,
    command_timeout: Duration,
    prefix: String,
    require_noeviction: bool,
}

impl RedisStoreBuilder {
    /// Connections in the pool (default 4).
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// How long one operation may wait, connecting included, before it fails
    /// as [`Error::Unavailable`] (default 1.5 s).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The key prefix (default `reissue:`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Refuse to connect to a Redis whose `maxmemory-policy` may evict keys
    /// (default: connect, with a warning in the log). A Redis that does not
    /// allow `CONFIG GET` is warned about either way: it cannot be checked.
    pub fn require_noeviction(mut self, required: bool) -> Self {
        self.require_noeviction = required;
        self
    }

    /// Connects. Fails if Redis cannot be reached now; later outages are
    /// ridden out by reconnecting.
    pub async fn connect(self) -> Result<RedisStore> {
        let config = Config::from_url(&self.url)
            .map_err(|e| Error::Config(format!("REDIS_URL: {}", e.details())))?;
        let timeout = self.command_timeout;
        let pool = Builder::from_config(config)
            .with_performance_config(|p| p.default_command_timeout = timeout)
            .with_connection_config(|c| {
                c.connection_timeout = timeout;
                c.internal_command_timeout = timeout;
                // A resent rotation is recognised by its request id, and a late
                // one refused by its deadline, so resending is safe.
                c.max_command_attempts = 2;
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .build_pool(self.pool_size)
            .map_err(|e| Error::Config(format!("REDIS_URL: {}", e.details())))?;
        tokio::time::timeout(timeout * 2, pool.init())
            .await
            .map_err(|_| Error::unavailable("timed out connecting to Redis"))?
            .map_err(Error::unavailable)?;
        let mut store = RedisStore::from_pool(pool, self.prefix);
        store.command_timeout = timeout;
        store.sync_clock().await?;
        store.eviction = store.check_eviction().await;
        match &store.eviction {
            Eviction::Never => {}
            Eviction::May { policy } if self.require_noeviction => {
                return Err(Error::Config(format!(
                    "REDIS_URL: Redis's maxmemory-policy is {policy}, which may evict sessions; \
                     set it to noeviction"
                )));
            }
            Eviction::May { policy } => tracing::warn!(
                policy = %policy,
                "Redis's maxmemory-policy may evict keys: an evicted session index hides sessions \
                 from logout-all until their next reissue; set maxmemory-policy noeviction"
            ),
            Eviction::Unknown => tracing::warn!(
                "could not check Redis's maxmemory-policy (CONFIG GET was refused); \
                 make sure it is noeviction"
            ),
        }
        Ok(store)
    }
}

impl RedisStore {
    /// A builder for a store at `url` (`redis://host:port/db`).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            pool_size: 4,
            command_timeout: Duration::from_millis(1500),
            prefix: "reissue:".to_owned(),
            require_noeviction: false,
        }
    }

    /// Connects with the defaults.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// A store on a pool the application built and connected itself. Its
    /// commands should time out (fred's `default_command_timeout`); the
    /// store assumes 1.5 s unless told by the builder.
    pub fn from_pool(pool: Pool, prefix: impl Into<String>) -> Self {
        Self {
            pool,
            prefix: prefix.into(),
            scripts: Arc::new(Scripts::new()),
            command_timeout: Duration::from_millis(1500),
            clock_offset_ms: Arc::new(AtomicI64::new(0)),
            revoked_keep_ms: AtomicU64::new(0),
            sessions_keep_ms: AtomicU64::new(0),
            eviction: Eviction::Unknown,
        }
    }

    /// The fred pool, e.g. to measure memory.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Redis's eviction policy as found at connect.
    pub fn eviction(&self) -> &Eviction {
        &self.eviction
    }

    fn client(&self) -> &Client {
        self.pool.next()
    }

    /// `reissue:{<user>}:s:`: a user's session keys are this plus the sid.
    pub fn session_key_base(&self, user_id: &str) -> String {
        format!("{}{{{}}}:s:", self.prefix, tag(user_id))
    }

    fn session_key(&self, user_id: &str, sid: &SessionId) -> String {
        format!("{}{}", self.session_key_base(user_id), sid.as_str())
    }

    /// The key of a user's session index.
    pub fn index_key(&self, user_id: &str) -> String {
        format!("{}{{{}}}:i", self.prefix, tag(user_id))
    }

    /// The key of a user's "everything before this was revoked" mark.
    fn revoked_before_key(&self, user_id: &str) -> String {
        format!("{}{{{}}}:rb", self.prefix, tag(user_id))
    }

    /// The revocation log, and the channel it is published on.
    pub fn revocation_log_key(&self) -> String {
        format!("{}rv", self.prefix)
    }

    fn attempt_keys(&self, a: &LoginAttempt<'_>) -> Vec<String> {
        let account = format!("{}f:{{{}}}", self.prefix, tag(a.account));
        vec![format!("{account}:{}", tag(a.network)), account]
    }

    fn revoked_keep(&self) -> i64 {
        keep_ms(&self.revoked_keep_ms, Retention::default().revoked)
    }

    fn sessions_keep(&self) -> i64 {
        keep_ms(&self.sessions_keep_ms, Retention::default().sessions)
    }

    /// The latest store time at which a script may still act for a call
    /// starting now: half the command timeout, so that a script that runs
    /// after its caller gave up (Redis hung, then resumed) does nothing.
    fn deadline(&self) -> i64 {
        let local = crate::token::now_millis() as i64;
        let half = (self.command_timeout.as_millis() / 2).min(i64::MAX as u128) as i64;
        local + self.clock_offset_ms.load(Ordering::Relaxed) + half
    }

    fn saw_store_time(&self, store_ms: u64) {
        let local = crate::token::now_millis() as i64;
        self.clock_offset_ms
            .store(store_ms as i64 - local, Ordering::Relaxed);
    }

    async fn sync_clock(&self) -> Result<()> {
        let t: Vec<i64> = self
            .client()
            .custom(fred::cmd!("TIME"), Vec::<String>::new())
            .await
            .map_err(Error::unavailable)?;
        if let [secs, micros] = t.as_slice() {
            self.saw_store_time((*secs as u64) * 1000 + (*micros as u64) / 1000);
        }
        Ok(())
    }

    async fn check_eviction(&self) -> Eviction {
        let reply: std::result::Result<Vec<String>, _> = self
            .client()
            .custom(fred::cmd!("CONFIG"), vec!["GET", "maxmemory-policy"])
            .await;
        match reply.as_deref() {
            Ok([_, policy]) if policy == "noeviction" => Eviction::Never,
            Ok([_, policy]) => Eviction::May {
                policy: policy.clone(),
            },
            _ => Eviction::Unknown,
        }
    }

    async fn run(&self, script: &Script, keys: Vec<String>, args: Vec<Value>) -> Result<Value> {
        script
            .evalsha_with_reload(self.client(), keys, args)
            .await
            .map_err(Error::unavailable)
    }
}

fn keep_ms(slot: &AtomicU64, default: Duration) -> i64 {
    match slot.load(Ordering::Relaxed) {
        0 => default.as_millis() as i64,
        ms => ms.min(i64::MAX as u64) as i64,
    }
}

/// The `{-1}` of a script that found itself past its deadline.
fn too_late_reply(reply: &[Value]) -> bool {
    matches!(reply, [Value::Integer(-1)])
}

fn too_late() -> Error {
    Error::unavailable("Redis ran the command after its deadline (it was hung)")
}

/// A user id or account as it may appear inside a key's hash tag: as it is when
/// it is plainly safe, else base64url behind a `~` (which plain ids never
/// contain), so no id can close the tag or imitate another key.
fn tag(id: &str) -> std::borrow::Cow<'_, str> {
    let plain = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b'+'));
    if plain {
        id.into()
    } else {
        format!(
            "~{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
        )
        .into()
    }
}

fn int(v: &Value) -> Result<u64> {
    match v {
        Value::Integer(i) => Ok((*i).max(0) as u64),
        Value::String(s) => s.parse().map_err(|_| bad_reply()),
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad_reply),
        _ => Err(bad_reply()),
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string()),
        Value::Bytes(b) => String::from_utf8(b.to_vec()).ok(),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

fn bad_reply() -> Error {
    Error::Internal("unexpected reply from the Redis store".into())
}

fn array(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        Value::Null => Ok(Vec::new()),
        _ => Err(bad_reply()),
    }
}

fn opt_arg<T: ToString>(v: Option<T>) -> Value {
    Value::from(v.map(|x| x.to_string()).unwrap_or_default())
}

fn successor(a: &[Value]) -> Result<Successor> {
    if a.len() < 7 {
        return Err(bad_reply());
    }
    Ok(Successor {
        generation: int(&a[1])?,
        rotated_at_ms: int(&a[2])?,
        expires_at_ms: int(&a[3])?,
        absolute_expiry_ms: int(&a[4])?,
        claims: text(&a[5]).unwrap_or_default(),
        login_country: text(&a[6]).as_deref().and_then(Country::new),
    })
}

fn ms_arg(d: Duration) -> Value {
    Value::from(d.as_millis().min(i64::MAX as u128) as i64)
}

#[async_trait]
impl RefreshStore for RedisStore {
    async fn create(&self, s: &NewSession) -> Result<Created> {
        let keys = vec![
            self.session_key(&s.user_id, &s.sid),
            self.index_key(&s.user_id),
            self.revocation_log_key(),
        ];
        let args: Vec<Value> = vec![
            s.sid.as_str().into(),
            ms_arg(s.max_age),
            ms_arg(s.idle_ttl),
            (s.max_sessions.clamp(1, i64::MAX as usize) as i64).into(),
            opt_arg(s.client.ip),
            opt_arg(s.client.country),
            opt_arg(s.client.user_agent.as_deref()),
            s.claims.as_str().into(),
            self.session_key_base(&s.user_id).into(),
            self.deadline().into(),
            self.revoked_keep().into(),
        ];
        let reply = array(self.run(&self.scripts.create, keys, args).await?)?;
        if too_late_reply(&reply) {
            return Err(too_late());
        }
        let [now, exp, abs, evicted @ ..] = reply.as_slice() else {
            return Err(bad_reply());
        };
        let now = int(now)?;
        self.saw_store_time(now);
        Ok(Created {
            first: Successor {
                generation: 1,
                rotated_at_ms: now,
                expires_at_ms: int(exp)?,
                absolute_expiry_ms: int(abs)?,
                claims: String::new(),
                login_country: s.client.country,
            },
            evicted: evicted
                .iter()
                .filter_map(|v| text(v).as_deref().and_then(SessionId::parse))
                .collect(),
        })
    }

    async fn rotate(&self, r: &RotateRequest<'_>) -> Result<Rotation> {
        let keys = vec![
            self.session_key(r.user_id, r.sid),
            self.index_key(r.user_id),
            self.revoked_before_key(r.user_id),
            self.revocation_log_key(),
        ];
        let request_id: u64 = rand::random();
        let args: Vec<Value> = vec![
            (r.generation.min(i64::MAX as u64) as i64).into(),
            ms_arg(r.grace),
            ms_arg(r.idle_ttl),
            opt_arg(r.client.ip),
            opt_arg(r.client.country),
            opt_arg(r.client.user_agent.as_deref()),
            r.sid.as_str().into(),
            request_id.to_string().into(),
            self.deadline().into(),
            self.revoked_keep().into(),
        ];
        let reply = array(self.run(&self.scripts.rotate, keys, args).await?)?;
        if too_late_reply(&reply) {
            return Err(too_late());
        }
        match reply.first().map(int).transpose()? {
            Some(1) => {
                let s = successor(&reply)?;
                self.saw_store_time(s.rotated_at_ms);
                Ok(Rotation::Rotated(s))
            }
            Some(2) => Ok(Rotation::Replayed(successor(&reply)?)),
            Some(3) => Ok(Rotation::Reused),
            Some(0) => Ok(Rotation::NotFound),
            _ => Err(bad_reply()),
        }
    }

    async fn revoke(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        let keys = vec![
            self.session_key(user_id, sid),
            self.index_key(user_id),
            self.revocation_log_key(),
        ];
        let args = vec![sid.as_str().into(), self.revoked_keep().into()];
        let n = self.run(&self.scripts.revoke, keys, args).await?;
        Ok(int(&n)? > 0)
    }

    async fn revoke_all(&self, user_id: &str) -> Result<Vec<SessionId>> {
        let keys = vec![
            self.index_key(user_id),
            self.revoked_before_key(user_id),
            self.revocation_log_key(),
        ];
        let args = vec![
            self.session_key_base(user_id).into(),
            self.sessions_keep().into(),
            self.revoked_keep().into(),
        ];
        let ended = array(self.run(&self.scripts.revoke_all, keys, args).await?)?;
        Ok(ended
            .iter()
            .filter_map(|v| text(v).as_deref().and_then(SessionId::parse))
            .collect())
    }

    async fn list(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        let keys = vec![self.index_key(user_id), self.revoked_before_key(user_id)];
        let args = vec![self.session_key_base(user_id).into()];
        let flat = array(self.run(&self.scripts.list, keys, args).await?)?;
        flat.chunks_exact(6)
            .filter_map(|c| {
                text(&c[0])
                    .as_deref()
                    .and_then(SessionId::parse)
                    .map(|sid| (sid, c))
            })
            .map(|(sid, c)| {
                Ok(SessionInfo {
                    sid,
                    created_at: int(&c[1])? / 1000,
                    last_used_at: int(&c[2])? / 1000,
                    client: ClientMeta {
                        ip: text(&c[3]).and_then(|s| s.parse::<IpAddr>().ok()),
                        country: text(&c[4]).as_deref().and_then(Country::new),
                        user_agent: text(&c[5]),
                    },
                })
            })
            .collect()
    }

    async fn is_live(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        let keys = vec![
            self.session_key(user_id, sid),
            self.revoked_before_key(user_id),
        ];
        Ok(int(&self.run(&self.scripts.is_live, keys, vec![]).await?)? > 0)
    }

    async fn begin_login(&self, a: &LoginAttempt<'_>) -> Result<Admission> {
        let args: Vec<Value> = vec![
            i64::from(a.max_per_network).into(),
            i64::from(a.max_per_account).into(),
            ms_arg(a.window.max(Duration::from_millis(1))),
        ];
        let reply = array(
            self.run(&self.scripts.begin_login, self.attempt_keys(a), args)
                .await?,
        )?;
        match reply.as_slice() {
            [allowed, _] if int(allowed)? == 1 => Ok(Admission::Allowed),
            [_, pttl] => Ok(Admission::Throttled {
                retry_after: int(pttl)?.div_ceil(1000).max(1),
            }),
            _ => Err(bad_reply()),
        }
    }

    async fn end_login(&self, a: &LoginAttempt<'_>, end: AttemptEnd) -> Result<()> {
        let succeeded = matches!(end, AttemptEnd::Succeeded);
        let args = vec![Value::from(if succeeded { "1" } else { "0" })];
        self.run(&self.scripts.end_login, self.attempt_keys(a), args)
            .await?;
        Ok(())
    }

    fn retain(&self, retention: Retention) {
        let ms = |d: Duration| d.as_millis().min(u64::MAX as u128) as u64;
        self.revoked_keep_ms
            .fetch_max(ms(retention.revoked), Ordering::Relaxed);
        self.sessions_keep_ms
            .fetch_max(ms(retention.sessions), Ordering::Relaxed);
    }

    fn follow_revocations(&self, revocations: Arc<Revocations>) -> Result<()> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config("instant revocation must be set up inside a Tokio runtime".into())
        })?;
        let reader = self.client().clone();
        let subscriber = Builder::from_config(reader.client_config())
            .set_performance_config(reader.perf_config())
            .set_connection_config(reader.connection_config().clone())
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 1_000, 2))
            .build()
            .map_err(|e| Error::Config(format!("REDIS_URL: {}", e.details())))?;
        let feed = Feed {
            subscriber,
            reader,
            catch_up: self.scripts.clone(),
            log: self.revocation_log_key(),
            keep: revocations.keep(),
            timeout: self.command_timeout,
            revocations: Arc::downgrade(&revocations),
        };
        runtime.spawn(feed.run());
        Ok(())
    }
}

/// The revocation feed of one instance: a subscription to the revocation
/// channel, and a catch-up from the log after every (re)subscription. The
/// instance counts as in sync only between a completed catch-up and the first
/// sign of trouble (a connection error, a reconnection, a missed message, a
/// heartbeat that went unanswered).
struct Feed {
    subscriber: Client,
    reader: Client,
    catch_up: Arc<Scripts>,
    log: String,
    keep: Duration,
    timeout: Duration,
    revocations: Weak<Revocations>,
}

async fn within<T>(
    timeout: Duration,
    f: impl std::future::Future<Output = std::result::Result<T, fred::error::Error>>,
) -> Result<T> {
    tokio::time::timeout(timeout, f)
        .await
        .map_err(|_| Error::unavailable("timed out"))?
        .map_err(Error::unavailable)
}

/// How often the feed checks that its subscription still answers.
const HEARTBEAT: Duration = Duration::from_millis(500);

impl Feed {
    async fn run(self) {
        let mut messages = self.subscriber.message_rx();
        let mut reconnects = self.subscriber.reconnect_rx();
        let mut errors = self.subscriber.error_rx();
        let _connection = self.subscriber.connect();
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        'resync: while let Some(revocations) = self.revocations.upgrade() {
            revocations.set_synced(false);
            if let Err(e) = self.sync(&revocations).await {
                tracing::warn!(error = %e, "revocation feed: not in sync; checking the store per request");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            // Events from before this sync are moot: it already happened after them.
            while reconnects.try_recv().is_ok() {}
            while errors.try_recv().is_ok() {}
            revocations.set_synced(true);
            tracing::debug!("revocation feed: in sync");
            drop(revocations);
            loop {
                tokio::select! {
                    message = messages.recv() => match message {
                        Ok(m) => {
                            let Some(revocations) = self.revocations.upgrade() else { break 'resync };
                            if let Some(sids) = m.value.as_str() {
                                for sid in sids.split(' ').filter_map(SessionId::parse) {
                                    revocations.insert(sid);
                                }
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue 'resync,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break 'resync,
                    },
                    _ = reconnects.recv() => continue 'resync,
                    _ = errors.recv() => continue 'resync,
                    _ = heartbeat.tick() => {
                        if self.revocations.strong_count() == 0 {
                            break 'resync;
                        }
                        let ping = self.subscriber.ping::<Value>(None);
                        if !matches!(tokio::time::timeout(self.timeout, ping).await, Ok(Ok(_))) {
                            continue 'resync;
                        }
                    }
                }
            }
        }
        let _ = self.subscriber.quit().await;
    }

    /// Subscribes, then reads the log: a revocation is either published after
    /// the subscription took effect, or in the log when it is read.
    async fn sync(&self, revocations: &Revocations) -> Result<()> {
        within(self.timeout, self.subscriber.wait_for_connect()).await?;
        within(self.timeout, self.subscriber.subscribe(self.log.as_str())).await?;
        let keep = Value::from(self.keep.as_millis().min(i64::MAX as u128) as i64);
        let entries: Value = within(
            self.timeout,
            self.catch_up.catch_up.evalsha_with_reload(
                &self.reader,
                vec![self.log.clone()],
                vec![keep],
            ),
        )
        .await?;
        for pair in array(entries)?.chunks_exact(2) {
            let sid = text(&pair[0]).as_deref().and_then(SessionId::parse);
            if let (Some(sid), Ok(left)) = (sid, int(&pair[1])) {
                revocations.insert_for(sid, Duration::from_millis(left));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::tag;

    #[test]
    fn hash_tags_cannot_be_escaped() {
        assert_eq!(tag("42"), "42");
        assert_eq!(tag("a@b.io"), "a@b.io");
        for hostile in ["a}b", "{x}", "a:s:b", "", "é", "a b"] {
            let t = tag(hostile);
            assert!(t.starts_with('~'), "{hostile:?} -> {t}");
            assert!(!t.contains(['{', '}', ':']), "{hostile:?} -> {t}");
        }
        assert_ne!(
            tag("~YQ"),
            tag("a"),
            "an id that looks encoded is encoded again"
        );
    }
}
