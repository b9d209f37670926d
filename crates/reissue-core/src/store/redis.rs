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
//! | `reissue:f:{<account>}` | string | failed logins of an account |
//!
//! Every key has a TTL: a session's is its idle lifetime (capped by its
//! absolute one), renewed by each reissue; the index outlives its newest session.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use fred::prelude::{Builder, Client, ClientLike, Config, KeysInterface, Pool, ReconnectPolicy};
use fred::types::Value;
use fred::types::scripts::Script;

use super::{
    ClientMeta, LoginFailures, NewSession, RefreshStore, RotateRequest, Rotation, SessionInfo,
    Successor, idle_expiry,
};
use crate::{Country, Error, Result, SessionId};

const CREATE: &str = r#"
local sk, ik, base = KEYS[1], KEYS[2], ARGV[10]
local now, abs, exp, max = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local fields = {'g', 1, 'r', now, 'a', abs, 'c', now, 'x', exp, 'cl', ARGV[9]}
if ARGV[6] ~= '' then table.insert(fields, 'ip'); table.insert(fields, ARGV[6]) end
if ARGV[7] ~= '' then
  table.insert(fields, 'cc'); table.insert(fields, ARGV[7])
  table.insert(fields, 'lc'); table.insert(fields, ARGV[7])
end
if ARGV[8] ~= '' then table.insert(fields, 'ua'); table.insert(fields, ARGV[8]) end
redis.call('HSET', sk, unpack(fields))
redis.call('PEXPIREAT', sk, exp)
redis.call('ZADD', ik, now, ARGV[1])
if redis.call('PTTL', ik) < abs - now then redis.call('PEXPIREAT', ik, abs) end
local live = {}
for _, m in ipairs(redis.call('ZRANGE', ik, 0, -1)) do
  if redis.call('EXISTS', base .. m) == 1 then table.insert(live, m) else redis.call('ZREM', ik, m) end
end
local evicted = {}
for i = 1, #live - max do
  redis.call('DEL', base .. live[i])
  redis.call('ZREM', ik, live[i])
  table.insert(evicted, live[i])
end
return evicted
"#;

// Returns {0} not found, {1, ...} rotated, {2, ...} replayed in the grace window,
// {3} reuse (session revoked). The successor is {gen, rotated_at, idle_exp, abs, claims, login_country}.
const ROTATE: &str = r#"
local sk, ik = KEYS[1], KEYS[2]
local v = redis.call('HMGET', sk, 'g', 'r', 'a', 'x', 'cl', 'lc')
if not v[1] then return {0} end
local g, r, a, x = tonumber(v[1]), tonumber(v[2]), tonumber(v[3]), tonumber(v[4])
local p, now = tonumber(ARGV[1]), tonumber(ARGV[2])
if now >= a or now >= x then
  redis.call('DEL', sk); redis.call('ZREM', ik, ARGV[8])
  return {0}
end
if p == g then
  local exp = math.min(now + tonumber(ARGV[4]), a)
  -- one HSET and at most one HDEL: each redis.call from Lua costs more than the work it does
  local set, gone = {'g', g + 1, 'r', now, 'x', exp}, {}
  for i, f in ipairs({'ip', 'cc', 'ua'}) do
    local val = ARGV[4 + i]
    if val ~= '' then table.insert(set, f); table.insert(set, val) else table.insert(gone, f) end
  end
  redis.call('HSET', sk, unpack(set))
  if #gone > 0 then redis.call('HDEL', sk, unpack(gone)) end
  redis.call('PEXPIREAT', sk, exp)
  return {1, g + 1, now, exp, a, v[5], v[6] or ''}
elseif p + 1 == g and tonumber(ARGV[3]) > 0 and now - r <= tonumber(ARGV[3]) then
  return {2, g, r, x, a, v[5], v[6] or ''}
end
redis.call('DEL', sk); redis.call('ZREM', ik, ARGV[8])
return {3}
"#;

const REVOKE: &str = r#"
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return n
"#;

const REVOKE_ALL: &str = r#"
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  n = n + redis.call('DEL', ARGV[1] .. m)
end
redis.call('DEL', KEYS[1])
return n
"#;

// A flat list: sid, created, last_used, ip, country, ua per live session, oldest first.
const LIST: &str = r#"
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local v = redis.call('HMGET', ARGV[1] .. m, 'c', 'r', 'ip', 'cc', 'ua')
  if v[1] then
    table.insert(out, m); table.insert(out, v[1]); table.insert(out, v[2])
    table.insert(out, v[3] or ''); table.insert(out, v[4] or ''); table.insert(out, v[5] or '')
  else
    redis.call('ZREM', KEYS[1], m)
  end
end
return out
"#;

const FAILURES: &str = r#"
local n = redis.call('GET', KEYS[1])
if not n then return {0, 0} end
return {tonumber(n), redis.call('PTTL', KEYS[1])}
"#;

const RECORD_FAILURE: &str = r#"
local n = redis.call('INCR', KEYS[1])
local t = redis.call('PTTL', KEYS[1])
if n == 1 or t < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  t = tonumber(ARGV[1])
end
return {n, t}
"#;

struct Scripts {
    create: Script,
    rotate: Script,
    revoke: Script,
    revoke_all: Script,
    list: Script,
    failures: Script,
    record_failure: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            create: Script::from_lua(CREATE),
            rotate: Script::from_lua(ROTATE),
            revoke: Script::from_lua(REVOKE),
            revoke_all: Script::from_lua(REVOKE_ALL),
            list: Script::from_lua(LIST),
            failures: Script::from_lua(FAILURES),
            record_failure: Script::from_lua(RECORD_FAILURE),
        }
    }
}

/// A [`RefreshStore`] on Redis, through a fred connection pool. Reconnects by
/// itself; while Redis is unreachable, each operation fails with
/// [`Error::Unavailable`] after the command timeout instead of hanging.
pub struct RedisStore {
    pool: Pool,
    prefix: String,
    scripts: Scripts,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    pool_size: usize,
    command_timeout: Duration,
    prefix: String,
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
                c.max_command_attempts = 2;
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .build_pool(self.pool_size)
            .map_err(|e| Error::Config(format!("REDIS_URL: {}", e.details())))?;
        tokio::time::timeout(timeout * 2, pool.init())
            .await
            .map_err(|_| Error::unavailable("timed out connecting to Redis"))?
            .map_err(Error::unavailable)?;
        Ok(RedisStore::from_pool(pool, self.prefix))
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
        }
    }

    /// Connects with the defaults.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// A store on a pool the application built and connected itself.
    pub fn from_pool(pool: Pool, prefix: impl Into<String>) -> Self {
        Self {
            pool,
            prefix: prefix.into(),
            scripts: Scripts::new(),
        }
    }

    /// The fred pool, e.g. to measure memory.
    pub fn pool(&self) -> &Pool {
        &self.pool
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

    fn failures_key(&self, account: &str) -> String {
        format!("{}f:{{{}}}", self.prefix, tag(account))
    }

    async fn run(&self, script: &Script, keys: Vec<String>, args: Vec<Value>) -> Result<Value> {
        script
            .evalsha_with_reload(self.client(), keys, args)
            .await
            .map_err(Error::unavailable)
    }
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

#[async_trait]
impl RefreshStore for RedisStore {
    async fn create(&self, s: &NewSession) -> Result<Vec<SessionId>> {
        let keys = vec![
            self.session_key(&s.user_id, &s.sid),
            self.index_key(&s.user_id),
        ];
        let args: Vec<Value> = vec![
            s.sid.as_str().into(),
            (s.now_ms as i64).into(),
            (s.absolute_expiry_ms as i64).into(),
            (idle_expiry(s.now_ms, s.idle_ttl, s.absolute_expiry_ms) as i64).into(),
            (s.max_sessions.clamp(1, i64::MAX as usize) as i64).into(),
            opt_arg(s.client.ip),
            opt_arg(s.client.country),
            opt_arg(s.client.user_agent.as_deref()),
            s.claims.as_str().into(),
            self.session_key_base(&s.user_id).into(),
        ];
        let evicted = array(self.run(&self.scripts.create, keys, args).await?)?;
        Ok(evicted
            .iter()
            .filter_map(|v| text(v).as_deref().and_then(SessionId::parse))
            .collect())
    }

    async fn rotate(&self, r: &RotateRequest<'_>) -> Result<Rotation> {
        let keys = vec![
            self.session_key(r.user_id, r.sid),
            self.index_key(r.user_id),
        ];
        let args: Vec<Value> = vec![
            (r.generation as i64).into(),
            (r.now_ms as i64).into(),
            (r.grace.as_millis() as i64).into(),
            (r.idle_ttl.as_millis() as i64).into(),
            opt_arg(r.client.ip),
            opt_arg(r.client.country),
            opt_arg(r.client.user_agent.as_deref()),
            r.sid.as_str().into(),
        ];
        let reply = array(self.run(&self.scripts.rotate, keys, args).await?)?;
        match reply.first().map(int).transpose()? {
            Some(1) => Ok(Rotation::Rotated(successor(&reply)?)),
            Some(2) => Ok(Rotation::Replayed(successor(&reply)?)),
            Some(3) => Ok(Rotation::Reused),
            Some(0) => Ok(Rotation::NotFound),
            _ => Err(bad_reply()),
        }
    }

    async fn revoke(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        let keys = vec![self.session_key(user_id, sid), self.index_key(user_id)];
        let n = self
            .run(&self.scripts.revoke, keys, vec![sid.as_str().into()])
            .await?;
        Ok(int(&n)? > 0)
    }

    async fn revoke_all(&self, user_id: &str) -> Result<usize> {
        let keys = vec![self.index_key(user_id)];
        let args = vec![self.session_key_base(user_id).into()];
        Ok(int(&self.run(&self.scripts.revoke_all, keys, args).await?)? as usize)
    }

    async fn list(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        let keys = vec![self.index_key(user_id)];
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
        let n: i64 = self
            .client()
            .exists(self.session_key(user_id, sid))
            .await
            .map_err(Error::unavailable)?;
        Ok(n > 0)
    }

    async fn login_failures(&self, account: &str) -> Result<Option<LoginFailures>> {
        let reply = array(
            self.run(
                &self.scripts.failures,
                vec![self.failures_key(account)],
                vec![],
            )
            .await?,
        )?;
        let (count, pttl) = match reply.as_slice() {
            [c, t] => (int(c)?, int(t)?),
            _ => return Err(bad_reply()),
        };
        Ok((count > 0).then(|| LoginFailures {
            count: count as u32,
            retry_after: pttl.div_ceil(1000),
        }))
    }

    async fn record_login_failure(&self, account: &str, window: Duration) -> Result<LoginFailures> {
        let args = vec![(window.as_millis().max(1) as i64).into()];
        let reply = array(
            self.run(
                &self.scripts.record_failure,
                vec![self.failures_key(account)],
                args,
            )
            .await?,
        )?;
        match reply.as_slice() {
            [c, t] => Ok(LoginFailures {
                count: int(c)? as u32,
                retry_after: int(t)?.div_ceil(1000),
            }),
            _ => Err(bad_reply()),
        }
    }

    async fn clear_login_failures(&self, account: &str) -> Result<()> {
        let _: i64 = self
            .client()
            .del(self.failures_key(account))
            .await
            .map_err(Error::unavailable)?;
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
