//! The Redis rows: `/auth/reissue` against the physical limit of a
//! one-round-trip design (a raw EVALSHA of a trivial script at the same
//! concurrency), and Redis bytes per session.

use reissue_core::RevocationMode;
use reissue_core::store::dangerous;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::prelude::{
    Builder, ClientLike, Config, KeysInterface, LuaInterface, MemoryInterface, Pool,
};
use fred::types::scan::Scanner;
use reissue_core::store::{ClientMeta, RedisStore};
use serde::Deserialize;

use crate::apps::Target;
use crate::fixtures::{self, Cache, Login, Scheme};
use crate::load::{self, Exchange, Load, Measurement};
use crate::server::spawn_axum;

/// The store's default pool size; the raw baseline uses the same.
const POOL_SIZE: usize = 4;

/// `/auth/reissue` behind reissue-tower's router on a Redis store; `metered`:
/// with the example apps' Prometheus recorder attached.
pub(crate) fn reissue_endpoint(
    redis_url: &str,
    prefix: &str,
    metered: bool,
) -> Result<Target, String> {
    let (url, prefix) = (redis_url.to_owned(), prefix.to_owned());
    let (server, ()) = spawn_axum("reissue-endpoint", move || async move {
        let store = RedisStore::builder(url)
            .key_prefix(prefix)
            .pool_size(POOL_SIZE)
            .connect()
            .await;
        let store = Arc::new(store.map_err(|e| format!("Redis: {e}"))?);
        let make = if metered {
            fixtures::metered
        } else {
            fixtures::reissue
        };
        let reissue = make(Scheme::Hs256, store, RevocationMode::Stateless, Cache::On);
        Ok(((), reissue_tower::router(reissue)))
    })?;
    Ok(Target {
        server,
        headers: Vec::new(),
    })
}

/// What a rotation cannot go below on this stack: an axum route that runs
/// one `EVALSHA` of `return 1` over a pool like the store's and signs an
/// access and a refresh token with reissue's codec, answering the same JSON
/// as `/auth/reissue` (served at `/auth/login` and `/auth/reissue`, so the
/// same client drives it).
pub(crate) fn reissue_limit(redis_url: &str) -> Result<Target, String> {
    use std::sync::atomic::{AtomicU64, Ordering};

    use axum::extract::State;
    use axum::http::StatusCode;
    use reissue_core::{SessionId, UserClaims};

    struct Limit {
        pool: Pool,
        sha: String,
        /// For its token codec only (a memory store it never uses).
        reissue: reissue_core::Reissue<fixtures::AnyUser>,
        generation: AtomicU64,
    }
    async fn pair(
        State(limit): State<Arc<Limit>>,
    ) -> Result<axum::Json<serde_json::Value>, (StatusCode, String)> {
        let fail = |e: String| (StatusCode::SERVICE_UNAVAILABLE, e);
        let _: i64 = limit
            .pool
            .next()
            .evalsha(&limit.sha, Vec::<String>::new(), Vec::<String>::new())
            .await
            .map_err(|e| fail(e.to_string()))?;
        let sid = SessionId::random();
        let generation = limit.generation.fetch_add(1, Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| fail(e.to_string()))?
            .as_secs();
        let claims = UserClaims::new("rotating@example.com", vec!["user".to_owned()]);
        let tokens = limit.reissue.tokens();
        let access = tokens
            .issue_access(fixtures::USER_ID, &sid, &claims, now, 300)
            .map_err(|e| fail(e.to_string()))?;
        let refresh = tokens
            .issue_refresh(
                fixtures::USER_ID,
                &sid,
                generation,
                now,
                now + 1_209_600,
                &claims,
            )
            .map_err(|e| fail(e.to_string()))?;
        Ok(axum::Json(serde_json::json!({
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": 300,
        })))
    }
    let url = redis_url.to_owned();
    let (server, ()) = spawn_axum("reissue-limit", move || async move {
        let pool = pool(&url).await?;
        let sha: String = pool
            .next()
            .script_load("return 1")
            .await
            .map_err(|e| e.to_string())?;
        let reissue = fixtures::reissue(
            Scheme::Hs256,
            Arc::new(reissue_core::store::MemoryStore::new()),
            RevocationMode::Stateless,
            Cache::On,
        );
        let limit = Arc::new(Limit {
            pool,
            sha,
            reissue,
            generation: AtomicU64::new(1),
        });
        let router = axum::Router::new()
            .route("/auth/login", axum::routing::post(pair))
            .route("/auth/reissue", axum::routing::post(pair))
            .with_state(limit);
        Ok(((), router))
    })?;
    Ok(Target {
        server,
        headers: Vec::new(),
    })
}

#[derive(Deserialize)]
struct TokenResponse {
    refresh_token: String,
}

/// A browser's `User-Agent`, as the browser rows send it.
pub(crate) const BROWSER_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

/// One client: logs in once (as its own user, during the warm-up), then
/// rotates its own refresh token on every request, so each request is a real
/// rotation (never a grace-window replay). With `user_agent`, every request
/// sends it, as a browser does.
#[derive(Debug)]
pub(crate) struct Rotating {
    user: String,
    user_agent: Option<&'static str>,
    refresh_token: Option<String>,
}

impl Rotating {
    pub(crate) fn new(connection: usize, user_agent: Option<&'static str>) -> Self {
        Self {
            user: format!("rotating-{connection}"),
            user_agent,
            refresh_token: None,
        }
    }
}

impl Exchange for Rotating {
    fn request(&mut self, out: &mut Vec<u8>) {
        let ua = self.user_agent.map(|ua| ("user-agent", ua));
        match &self.refresh_token {
            None => load::post_json(
                out,
                "/auth/login",
                ua.as_slice(),
                &format!(r#"{{"user":"{}"}}"#, self.user),
            ),
            Some(rt) => {
                let bearer = format!("Bearer {rt}");
                let mut headers = vec![("authorization", bearer.as_str())];
                headers.extend(ua);
                load::post_json(out, "/auth/reissue", &headers, "")
            }
        }
    }

    fn check(&mut self, status: u16, body: &[u8]) -> Result<(), String> {
        if status != 200 {
            return Err(format!(
                "status {status}: {}",
                String::from_utf8_lossy(body)
            ));
        }
        let pair: TokenResponse =
            serde_json::from_slice(body).map_err(|e| format!("token response: {e}"))?;
        if self.refresh_token.as_deref() == Some(pair.refresh_token.as_str()) {
            return Err("the refresh token did not rotate".into());
        }
        self.refresh_token = Some(pair.refresh_token);
        Ok(())
    }
}

async fn pool(url: &str) -> Result<Pool, String> {
    let config = Config::from_url(url).map_err(|e| e.to_string())?;
    let pool = Builder::from_config(config)
        .build_pool(POOL_SIZE)
        .map_err(|e| e.to_string())?;
    pool.init().await.map_err(|e| e.to_string())?;
    Ok(pool)
}

/// `EVALSHA` of `return 1` in a closed loop, `load.connections` in flight
/// over a pool as large as the store's, on one thread: one Redis round trip
/// per operation and nothing else.
pub(crate) fn raw_evalsha(redis_url: &str, load: Load) -> Result<Measurement, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let pool = pool(redis_url).await?;
        let sha: String = pool
            .next()
            .script_load("return 1")
            .await
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        let (window_start, window_end) = (start + load.warmup, start + load.warmup + load.measure);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..load.connections {
            let (pool, sha) = (pool.clone(), sha.clone());
            tasks.spawn(async move {
                let (mut completed, mut latencies) = (0u64, Vec::with_capacity(1 << 16));
                loop {
                    let sent = Instant::now();
                    if sent >= window_end {
                        break;
                    }
                    let one: i64 = pool
                        .next()
                        .evalsha(&sha, Vec::<String>::new(), Vec::<String>::new())
                        .await
                        .map_err(|e| e.to_string())?;
                    if one != 1 {
                        return Err(format!("EVALSHA returned {one}"));
                    }
                    let done = Instant::now();
                    if done >= window_start && done < window_end {
                        completed += 1;
                        latencies.push((done - sent).as_nanos() as u64);
                    }
                }
                Ok::<_, String>((completed, latencies))
            });
        }
        let (mut completed, mut latencies) = (0, Vec::new());
        while let Some(done) = tasks.join_next().await {
            let (n, mut l) = done.map_err(|e| e.to_string())??;
            completed += n;
            latencies.append(&mut l);
        }
        let _ = pool.quit().await;
        Ok(Measurement::new(completed, load.measure, latencies))
    })
}

/// Redis bytes per session, from `MEMORY USAGE` (exact: `SAMPLES 0`).
#[derive(Debug, Clone)]
pub(crate) struct SessionBytes {
    pub(crate) label: String,
    /// The user's key (sessions and index in one) per session.
    pub(crate) bytes: f64,
}

/// Creates sessions through `Reissue::login` (so with real claims and client
/// metadata) and measures them: one session for each of N users (each pays
/// a whole index), and N sessions of one user (sharing one index).
pub(crate) fn session_bytes(redis_url: &str, prefix: &str) -> Result<Vec<SessionBytes>, String> {
    const N: usize = 32;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let store = RedisStore::builder(redis_url)
            .key_prefix(prefix)
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let store = Arc::new(store);
        let client = dangerous::pool(&store).next().clone();
        let reissue = fixtures::reissue(
            Scheme::Hs256,
            store.clone(),
            RevocationMode::Stateless,
            Cache::On,
        );
        let ip = Some([203, 0, 113, 7].into());
        let firefox =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
        let clients = [
            ("no client metadata", ClientMeta::default()),
            ("curl UA", ClientMeta::new(ip, None, Some("curl/8.5.0"))),
            (
                "browser UA + country",
                ClientMeta::new(ip, reissue_core::Country::new("DE"), Some(firefox)),
            ),
        ];
        let mut out = Vec::new();
        for (i, (label, meta)) in clients.iter().enumerate() {
            let mut total = 0;
            for u in 0..N {
                let user = format!("user-{i}-{u:06}");
                login(&reissue, &user, meta).await?;
                total += memory_usage(&client, &dangerous::user_key(&store, &user)).await?;
            }
            out.push(SessionBytes {
                label: format!("{label}, 1 session per user"),
                bytes: total as f64 / N as f64,
            });
            let user = format!("many-{i}");
            for _ in 0..N {
                login(&reissue, &user, meta).await?;
            }
            let total = memory_usage(&client, &dangerous::user_key(&store, &user)).await?;
            out.push(SessionBytes {
                label: format!("{label}, {N} sessions of 1 user"),
                bytes: total as f64 / N as f64,
            });
        }
        Ok(out)
    })
}

/// Logs `user` in (one key holds all of a user's sessions, their index
/// included: that key is what a session costs).
async fn login(
    reissue: &reissue_core::Reissue<fixtures::AnyUser>,
    user: &str,
    meta: &ClientMeta,
) -> Result<(), String> {
    let login = Login {
        user: user.to_owned(),
    };
    reissue
        .login(login, meta)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

async fn memory_usage(client: &fred::prelude::Client, key: &str) -> Result<u64, String> {
    let bytes: Option<u64> = client
        .memory_usage(key, Some(0))
        .await
        .map_err(|e| e.to_string())?;
    bytes.ok_or_else(|| format!("no key {key}"))
}

/// Deletes every key under `prefix` (SCAN, then DEL in batches).
pub(crate) fn clean(redis_url: &str, prefix: &str) -> Result<usize, String> {
    use futures_util::TryStreamExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let pool = pool(redis_url).await?;
        let client = pool.next().clone();
        let mut deleted = 0;
        let mut scan = client.scan(format!("{prefix}*"), Some(1000), None);
        while let Some(mut page) = scan.try_next().await.map_err(|e| e.to_string())? {
            if let Some(keys) = page.take_results().filter(|k| !k.is_empty()) {
                let n: usize = client.del(keys).await.map_err(|e| e.to_string())?;
                deleted += n;
            }
            page.next();
        }
        let _ = pool.quit().await;
        Ok(deleted)
    })
}

/// How long to wait for Redis to answer at start.
pub(crate) const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether Redis answers at `url`.
pub(crate) fn reachable(url: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let pool = tokio::time::timeout(PING_TIMEOUT, pool(url))
            .await
            .map_err(|_| format!("no answer from Redis at {url}"))??;
        let _: String = pool.next().ping(None).await.map_err(|e| e.to_string())?;
        let _ = pool.quit().await;
        Ok(())
    })
}

/// Redis's own execution time per `EVALSHA`, from `INFO commandstats`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScriptCost {
    /// One rotation (`RefreshStore::rotate`'s script), µs.
    pub(crate) rotate_us: f64,
    /// `return 1`, µs.
    pub(crate) trivial_us: f64,
    /// The rotation's three `redis.call`s alone (`TIME`, `GET`, `SETRANGE`
    /// of 33 bytes into a value of a session's size) with arguments of its
    /// shape (two keys, three values), µs: what any Lua rotation costs.
    pub(crate) floor_us: f64,
}

/// [`ScriptCost::floor_us`]'s script.
const FLOOR: &str = "local t = redis.call('TIME')
local v = redis.call('GET', KEYS[1])
redis.call('SETRANGE', KEYS[1], 24, string.sub(ARGV[1], 1, 33))
return 1";

async fn evalsha_stats(client: &fred::prelude::Client) -> Result<(u64, u64), String> {
    let info: String = client
        .info(Some(fred::types::InfoKind::CommandStats))
        .await
        .map_err(|e| e.to_string())?;
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:"))
        .unwrap_or("calls=0,usec=0");
    let field = |name: &str| {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(name))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("calls="), field("usec=")))
}

/// Time Redis spends executing one rotation script vs `return 1`, each run
/// `n` times one after the other (Redis's own clock: no network, no client).
/// Other clients' EVALSHA calls in the meantime would count too.
pub(crate) fn script_cost(redis_url: &str, prefix: &str, n: usize) -> Result<ScriptCost, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let store = RedisStore::builder(redis_url)
            .key_prefix(prefix)
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let client = dangerous::pool(&store).next().clone();
        let reissue = fixtures::reissue(
            Scheme::Hs256,
            Arc::new(store),
            RevocationMode::Stateless,
            Cache::On,
        );
        let login = Login {
            user: "script-cost".to_owned(),
        };
        let mut rt = reissue
            .login(login, &ClientMeta::default())
            .await
            .map_err(|e| e.to_string())?
            .refresh_token;
        let per_call =
            |(c0, u0): (u64, u64), (c1, u1): (u64, u64)| (u1 - u0) as f64 / (c1 - c0).max(1) as f64;
        let before = evalsha_stats(&client).await?;
        for _ in 0..n {
            rt = reissue
                .reissue(&rt, &ClientMeta::default())
                .await
                .map_err(|e| e.to_string())?
                .refresh_token;
        }
        let rotate_us = per_call(before, evalsha_stats(&client).await?);
        let sha: String = client
            .script_load("return 1")
            .await
            .map_err(|e| e.to_string())?;
        let before = evalsha_stats(&client).await?;
        for _ in 0..n {
            let _: i64 = client
                .evalsha(&sha, Vec::<String>::new(), Vec::<String>::new())
                .await
                .map_err(|e| e.to_string())?;
        }
        let trivial_us = per_call(before, evalsha_stats(&client).await?);
        let sha: String = client.script_load(FLOOR).await.map_err(|e| e.to_string())?;
        let (user, log) = (
            format!("{prefix}{{floor}}u"),
            format!("{prefix}{{floor}}:rv"),
        );
        let _: () = client
            .set(&user, vec![0u8; 91], None, None, false)
            .await
            .map_err(|e| e.to_string())?;
        let args = [vec![7u8; 64], vec![9u8; 31], vec![b'A'; 22]];
        let before = evalsha_stats(&client).await?;
        for _ in 0..n {
            let _: i64 = client
                .evalsha(&sha, vec![user.as_str(), log.as_str()], args.to_vec())
                .await
                .map_err(|e| e.to_string())?;
        }
        let floor_us = per_call(before, evalsha_stats(&client).await?);
        Ok(ScriptCost {
            rotate_us,
            trivial_us,
            floor_us,
        })
    })
}

/// How long a revocation takes to reach other instances.
pub(crate) struct Propagation {
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
}

/// Three instances in instant mode on one Redis: `n` times, a session is
/// logged in on the first and logged out there; timed from the logout's
/// return until both others hold the session as ended (what their protected
/// routes check, in memory).
pub(crate) fn propagation(redis_url: &str, prefix: &str, n: usize) -> Result<Propagation, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut instances = Vec::new();
        for _ in 0..3 {
            let store = RedisStore::builder(redis_url)
                .key_prefix(format!("{prefix}propagation:"))
                .connect()
                .await
                .map_err(|e| format!("Redis: {e}"))?;
            instances.push(fixtures::reissue(
                Scheme::Hs256,
                Arc::new(store),
                RevocationMode::Instant,
                Cache::On,
            ));
        }
        let started = Instant::now();
        while !instances
            .iter()
            .all(|r| r.verifier().revocations().is_some_and(|f| f.is_synced()))
        {
            if started.elapsed() > Duration::from_secs(5) {
                return Err("the revocation feeds did not get in sync".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut took = Vec::with_capacity(n);
        for i in 0..n {
            let login = Login {
                user: format!("prop-{i}"),
            };
            let pair = instances[0]
                .login(login, &ClientMeta::default())
                .await
                .map_err(|e| e.to_string())?;
            let rt = instances[0]
                .tokens()
                .verify_refresh(&pair.refresh_token)
                .map_err(|e| e.to_string())?;
            instances[0]
                .logout(&rt.sub, &rt.sid)
                .await
                .map_err(|e| e.to_string())?;
            let t0 = Instant::now();
            for other in &instances[1..] {
                let ended = other.verifier().revocations().expect("instant mode");
                while !ended.contains(&rt.sid) {
                    if t0.elapsed() > Duration::from_secs(5) {
                        return Err(format!("logout {i} not heard within 5 s"));
                    }
                    tokio::task::yield_now().await;
                }
            }
            took.push(t0.elapsed());
        }
        took.sort();
        let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
        Ok(Propagation {
            p50: at(0.5),
            p99: at(0.99),
            max: *took.last().expect("samples"),
        })
    })
}

/// `k` instances in strict mode on one Redis, each holding its lease: `n`
/// times, a session is logged in on the first and logged out there, timed
/// from the logout's call to its return (which waits for every lease
/// holder's acknowledgement).
pub(crate) fn strict_logout(
    redis_url: &str,
    prefix: &str,
    k: usize,
    n: usize,
) -> Result<Propagation, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut instances = Vec::new();
        for _ in 0..k {
            let store = RedisStore::builder(redis_url)
                .key_prefix(format!("{prefix}strict-logout-{k}:"))
                .connect()
                .await
                .map_err(|e| format!("Redis: {e}"))?;
            instances.push(fixtures::reissue(
                Scheme::Hs256,
                Arc::new(store),
                RevocationMode::Strict,
                Cache::On,
            ));
        }
        let started = Instant::now();
        while !instances
            .iter()
            .all(|r| r.verifier().revocations().is_some_and(|f| f.holds_lease()))
        {
            if started.elapsed() > Duration::from_secs(10) {
                return Err("the leases were not granted".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut took = Vec::with_capacity(n);
        for i in 0..n {
            let login = Login {
                user: format!("strict-logout-{i}"),
            };
            let pair = instances[0]
                .login(login, &ClientMeta::default())
                .await
                .map_err(|e| e.to_string())?;
            let rt = instances[0]
                .tokens()
                .verify_refresh(&pair.refresh_token)
                .map_err(|e| e.to_string())?;
            let t0 = Instant::now();
            instances[0]
                .logout(&rt.sub, &rt.sid)
                .await
                .map_err(|e| e.to_string())?;
            took.push(t0.elapsed());
            for other in &instances[1..] {
                let ended = other.verifier().revocations().expect("strict mode");
                if !ended.contains(&rt.sid) {
                    return Err(format!("logout {i} returned before an instance had it"));
                }
            }
        }
        took.sort();
        let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
        Ok(Propagation {
            p50: at(0.5),
            p99: at(0.99),
            max: *took.last().expect("samples"),
        })
    })
}
