//! `soak --minutes <m> [--users <n>] [--sessions <per user>]`: two reissue
//! instances (each its own store connections, revocation feed and verifier)
//! on one Redis that this command starts itself (`redis-server` on a free
//! port, no persistence), so that its memory is the soak's alone.
//!
//! Every user is one task holding its sessions (access token, refresh token,
//! the last spent refresh token) and driving mixed traffic on either
//! instance at random: protected requests, rotations, logouts, re-logins,
//! theft replays (a spent refresh token presented again) and logout-all.
//! Each answer is compared with what the client expects; a refusal that must
//! be seen by the *other* instance is checked there, through the feed.
//!
//! Every sample (20 over the run) records the process RSS (both instances
//! and the clients), Redis's `used_memory`, the keys (scanned: each must
//! have a TTL), and the revocation logs (largest, oldest entry). The users'
//! session lists are compared with what their clients hold as the run goes.
//! The report ends with a verdict per property; the exit status is 1 when
//! one fails.

use std::net::{IpAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fred::prelude::{Builder, ClientLike, Config as RedisConfig, LuaInterface};
use reissue_core::store::{ClientMeta, RedisStore};
use reissue_core::{Config, HttpRequest, KeySet, Reissue, RevocationMode, SessionId};

use crate::fixtures::{AUDIENCE, AnyUser, ISSUER, Login, Scheme};

/// Access tokens live this long, and so does a revocation log entry: short,
/// so that the logs are trimmed many times within a run.
const ACCESS_TTL: Duration = Duration::from_secs(30);
/// The idle refresh lifetime: every held session is used well within it.
const REFRESH_TTL: Duration = Duration::from_secs(300);
/// How long a client waits after a revocation before checking that the other
/// instance refuses it too (the feed's delivery, with room for a busy machine).
const FEED_DELAY: Duration = Duration::from_millis(300);
/// Pause between one user's operations.
const PACE: Duration = Duration::from_millis(40);
/// Samples over the run.
const SAMPLES: u32 = 20;
/// Unexpected answers kept verbatim.
const KEEP_MESSAGES: usize = 20;

#[derive(Debug, Clone, Copy)]
struct Args {
    minutes: f64,
    users: usize,
    sessions: usize,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = Args {
        minutes: 10.0,
        users: 100,
        sessions: 3,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value"))
                .cloned()
        };
        match a.as_str() {
            "--minutes" => {
                let v = value("--minutes")?;
                out.minutes = v
                    .parse()
                    .ok()
                    .filter(|m: &f64| *m > 0.0 && *m <= 120.0)
                    .ok_or_else(|| format!("--minutes {v:?}: 0 to 120"))?;
            }
            "--users" => {
                let v = value("--users")?;
                out.users = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| format!("--users {v:?}: 1 to 10000"))?;
            }
            "--sessions" => {
                let v = value("--sessions")?;
                out.sessions = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=16).contains(n))
                    .ok_or_else(|| format!("--sessions {v:?}: 1 to 16"))?;
            }
            "-h" | "--help" => {
                println!(
                    "usage: reissue-benches soak [--minutes <m, default 10>] [--users <n, default 100>] \
                     [--sessions <per user, default 3>]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown soak argument {other:?} (try --help)")),
        }
    }
    Ok(out)
}

/// A `redis-server` of the soak's own, stopped when dropped.
struct OwnRedis {
    child: Child,
    url: String,
}

impl OwnRedis {
    fn start() -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--maxmemory-policy", "noeviction"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        let redis = Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(redis);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("redis-server did not start".into())
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request that carries only a bearer token.
struct Bearer(String);

impl HttpRequest for Bearer {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        (name == "authorization")
            .then_some(self.0.as_bytes())
            .into_iter()
    }
    fn peer_addr(&self) -> Option<IpAddr> {
        None
    }
}

fn bearer(access: &str) -> Bearer {
    Bearer(format!("Bearer {access}"))
}

/// What the clients counted.
#[derive(Debug, Default)]
struct Counts {
    requests: AtomicU64,
    rotations: AtomicU64,
    logouts: AtomicU64,
    logins: AtomicU64,
    replays: AtomicU64,
    logout_alls: AtomicU64,
    list_checks: AtomicU64,
    unexpected: AtomicU64,
    messages: Mutex<Vec<String>>,
}

impl Counts {
    fn unexpected(&self, what: String) {
        self.unexpected.fetch_add(1, Ordering::Relaxed);
        let mut m = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() < KEEP_MESSAGES {
            m.push(what);
        }
    }
}

/// One session as its client holds it.
struct Held {
    access: String,
    refresh: String,
    sid: SessionId,
    /// When the access token was issued.
    at: Instant,
    /// The refresh token this one replaced, for a theft replay.
    spent: Option<String>,
}

type Instance = Reissue<AnyUser>;

/// A small xorshift: the soak needs variety, not quality.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const USER_AGENTS: [&str; 3] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "soak-client/1.0",
];

async fn login(inst: &Instance, user: &str, rng: &mut Rng) -> Result<Held, String> {
    let ip = IpAddr::from([127, 0, 0, 1 + rng.below(200) as u8]);
    let client = inst.client_at(Some(ip), Some(USER_AGENTS[rng.below(3) as usize]));
    let pair = inst
        .login(
            Login {
                user: user.to_owned(),
            },
            &client,
        )
        .await
        .map_err(|e| format!("login of {user}: {e}"))?;
    let sid = inst
        .verifier()
        .verify(&pair.access_token)
        .map_err(|e| format!("a fresh access token: {e}"))?
        .session_id
        .clone();
    Ok(Held {
        access: pair.access_token,
        refresh: pair.refresh_token,
        sid,
        at: Instant::now(),
        spent: None,
    })
}

/// The rest of a failed check's message, or nothing when it passed.
fn refused_on(inst: &Instance, access: &str) -> impl Future<Output = Option<String>> {
    let req = bearer(access);
    async move {
        match inst.verifier().authenticate(&req).await {
            Err(e) if e.status() == 401 => None,
            Ok(_) => Some("accepted".to_owned()),
            Err(e) => Some(format!("refused otherwise: {e}")),
        }
    }
}

async fn rotate(inst: &Instance, h: &mut Held) -> Result<(), String> {
    let pair = inst
        .reissue(&h.refresh, &ClientMeta::default())
        .await
        .map_err(|e| format!("rotation: {e}"))?;
    h.spent = Some(std::mem::replace(&mut h.refresh, pair.refresh_token));
    h.access = pair.access_token;
    h.at = Instant::now();
    Ok(())
}

async fn user_loop(
    id: usize,
    sessions: usize,
    instances: Arc<[Instance; 2]>,
    deadline: Instant,
    counts: Arc<Counts>,
) {
    let user = format!("soak-{id}");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (id as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut held = Vec::new();
    while held.len() < sessions && Instant::now() < deadline {
        match login(&instances[held.len() % 2], &user, &mut rng).await {
            Ok(h) => {
                counts.logins.fetch_add(1, Ordering::Relaxed);
                held.push(h);
            }
            Err(e) => counts.unexpected(e),
        }
    }
    // Spread the users' first operations over one pace.
    tokio::time::sleep(PACE.mul_f64(rng.below(1000) as f64 / 1000.0)).await;
    while Instant::now() < deadline && !held.is_empty() {
        tokio::time::sleep(PACE).await;
        let i = rng.below(held.len() as u64) as usize;
        let a = rng.below(2) as usize;
        let (here, there) = (&instances[a], &instances[1 - a]);
        // An access token near its end is renewed first, as a client does.
        if held[i].at.elapsed() + Duration::from_secs(5) > ACCESS_TTL {
            counts.rotations.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = rotate(here, &mut held[i]).await {
                counts.unexpected(format!("{user}: {e}"));
                held.swap_remove(i);
                relogin(here, &user, &mut held, &mut rng, &counts).await;
                continue;
            }
        }
        let roll = rng.below(1000);
        let outcome = match roll {
            0..600 => {
                counts.requests.fetch_add(1, Ordering::Relaxed);
                here.verifier()
                    .authenticate(&bearer(&held[i].access))
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("protected request: {e}"))
            }
            600..850 => {
                counts.rotations.fetch_add(1, Ordering::Relaxed);
                rotate(here, &mut held[i]).await
            }
            850..900 => {
                counts.logouts.fetch_add(1, Ordering::Relaxed);
                let h = held.swap_remove(i);
                let r = logout(here, there, &user, &h).await;
                relogin(here, &user, &mut held, &mut rng, &counts).await;
                r
            }
            900..930 => match held[i].spent.clone() {
                None => Ok(()),
                Some(spent) => {
                    counts.replays.fetch_add(1, Ordering::Relaxed);
                    let h = held.swap_remove(i);
                    let r = replay(here, there, &h, &spent).await;
                    relogin(here, &user, &mut held, &mut rng, &counts).await;
                    r
                }
            },
            930..940 => {
                counts.logout_alls.fetch_add(1, Ordering::Relaxed);
                let gone = std::mem::take(&mut held);
                let r = logout_all(here, there, &user, &gone).await;
                for _ in 0..sessions {
                    relogin(there, &user, &mut held, &mut rng, &counts).await;
                }
                r
            }
            _ => {
                counts.list_checks.fetch_add(1, Ordering::Relaxed);
                list_matches(here, &user, &held).await
            }
        };
        if let Err(e) = outcome {
            counts.unexpected(format!("{user}: {e}"));
        }
    }
}

async fn relogin(
    inst: &Instance,
    user: &str,
    held: &mut Vec<Held>,
    rng: &mut Rng,
    counts: &Counts,
) {
    counts.logins.fetch_add(1, Ordering::Relaxed);
    match login(inst, user, rng).await {
        Ok(h) => held.push(h),
        Err(e) => counts.unexpected(e),
    }
}

async fn logout(here: &Instance, there: &Instance, user: &str, h: &Held) -> Result<(), String> {
    here.logout(user, &h.sid)
        .await
        .map_err(|e| format!("logout: {e}"))?;
    tokio::time::sleep(FEED_DELAY).await;
    if let Some(e) = refused_on(there, &h.access).await {
        return Err(format!("the other instance after a logout: {e}"));
    }
    match there.reissue(&h.refresh, &ClientMeta::default()).await {
        Err(e) if e.status() == 401 => Ok(()),
        other => Err(format!("a logged-out refresh token: {other:?}")),
    }
}

async fn replay(here: &Instance, there: &Instance, h: &Held, spent: &str) -> Result<(), String> {
    match there.reissue(spent, &ClientMeta::default()).await {
        Err(e) if e.status() == 401 => {}
        other => return Err(format!("a replayed spent refresh token: {other:?}")),
    }
    // Reuse ends the whole session: the holder's current tokens too.
    match here.reissue(&h.refresh, &ClientMeta::default()).await {
        Err(e) if e.status() == 401 => {}
        other => {
            return Err(format!(
                "the current refresh token after a theft: {other:?}"
            ));
        }
    }
    tokio::time::sleep(FEED_DELAY).await;
    for inst in [here, there] {
        if let Some(e) = refused_on(inst, &h.access).await {
            return Err(format!("the access token after a theft: {e}"));
        }
    }
    Ok(())
}

async fn logout_all(
    here: &Instance,
    there: &Instance,
    user: &str,
    gone: &[Held],
) -> Result<(), String> {
    let n = here
        .logout_all(user)
        .await
        .map_err(|e| format!("logout-all: {e}"))?;
    if n != gone.len() {
        return Err(format!(
            "logout-all ended {n} sessions, the client held {}",
            gone.len()
        ));
    }
    tokio::time::sleep(FEED_DELAY).await;
    for h in gone {
        if let Some(e) = refused_on(there, &h.access).await {
            return Err(format!("the other instance after logout-all: {e}"));
        }
    }
    Ok(())
}

async fn list_matches(inst: &Instance, user: &str, held: &[Held]) -> Result<(), String> {
    let listed = inst
        .sessions(user)
        .await
        .map_err(|e| format!("session list: {e}"))?;
    let mut listed: Vec<&str> = listed.iter().map(|s| s.sid.as_str()).collect();
    let mut mine: Vec<&str> = held.iter().map(|h| h.sid.as_str()).collect();
    listed.sort_unstable();
    mine.sort_unstable();
    if listed == mine {
        Ok(())
    } else {
        Err(format!(
            "the session list has {} sessions, the clients hold {}",
            listed.len(),
            mine.len()
        ))
    }
}

/// One look at the process and at Redis.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at_s: f64,
    rss_kib: u64,
    redis_used: u64,
    keys: u64,
    without_ttl: u64,
    logs: u64,
    largest_log: u64,
    log_entries: u64,
    /// The oldest revocation log entry's age, ms.
    oldest_ms: u64,
    ops: u64,
}

/// Scans every key: how many, how many without a TTL, and the revocation
/// logs (`…:rv`): how many, the largest, all entries, the oldest entry's
/// age (ms; the logs are scored in ms of Redis's clock).
const SCAN: &str = r#"
local cursor = "0"
local keys, no_ttl, logs, largest, entries = 0, 0, 0, 0, 0
local oldest = nil
repeat
  local r = redis.call("SCAN", cursor, "COUNT", 1000)
  cursor = r[1]
  for _, k in ipairs(r[2]) do
    keys = keys + 1
    if redis.call("PTTL", k) == -1 then no_ttl = no_ttl + 1 end
    if string.sub(k, -3) == ":rv" then
      logs = logs + 1
      local n = redis.call("ZCARD", k)
      entries = entries + n
      if n > largest then largest = n end
      local first = redis.call("ZRANGE", k, 0, 0, "WITHSCORES")
      if first[2] then
        local s = tonumber(first[2])
        if oldest == nil or s < oldest then oldest = s end
      end
    end
  end
until cursor == "0"
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local age = 0
if oldest then age = now - oldest end
return {keys, no_ttl, logs, largest, entries, age}
"#;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn sample(
    client: &fred::prelude::Client,
    started: Instant,
    counts: &Counts,
) -> Result<Sample, String> {
    let info: String = client
        .info(Some(fred::types::InfoKind::Memory))
        .await
        .map_err(|e| e.to_string())?;
    let redis_used = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let scan: Vec<i64> = client
        .eval(SCAN, Vec::<String>::new(), Vec::<String>::new())
        .await
        .map_err(|e| e.to_string())?;
    let [keys, without_ttl, logs, largest_log, log_entries, oldest_ms] = scan[..] else {
        return Err(format!("unexpected scan answer {scan:?}"));
    };
    let n = |v: i64| v.max(0) as u64;
    let ops = [
        &counts.requests,
        &counts.rotations,
        &counts.logouts,
        &counts.logins,
        &counts.replays,
        &counts.logout_alls,
        &counts.list_checks,
    ]
    .iter()
    .map(|c| c.load(Ordering::Relaxed))
    .sum();
    Ok(Sample {
        at_s: started.elapsed().as_secs_f64(),
        rss_kib: rss_kib(),
        redis_used,
        keys: n(keys),
        without_ttl: n(without_ttl),
        logs: n(logs),
        largest_log: n(largest_log),
        log_entries: n(log_entries),
        oldest_ms: n(oldest_ms),
        ops,
    })
}

async fn instance(url: &str) -> Result<Instance, String> {
    let store = RedisStore::builder(url)
        .key_prefix("soak:")
        .connect()
        .await
        .map_err(|e| format!("Redis: {e}"))?;
    let config = Config::new(ISSUER, AUDIENCE)
        .access_ttl(ACCESS_TTL)
        .refresh_ttl(REFRESH_TTL)
        // strict rotation: a spent token presented again is theft at once
        .reuse_grace(Duration::ZERO)
        .revocation(RevocationMode::Instant);
    let keys = KeySet::new(Scheme::Hs256.key()).map_err(|e| e.to_string())?;
    Reissue::builder(config, keys, Arc::new(store), AnyUser)
        .build()
        .map_err(|e| e.to_string())
}

/// The growth of `f` from the first steady sample (a quarter in) to the
/// largest of the last quarter, in per cent.
fn growth(samples: &[Sample], f: impl Fn(&Sample) -> u64) -> f64 {
    let steady = samples.len() / 4;
    let base = f(&samples[steady]).max(1) as f64;
    let late = samples[samples.len() * 3 / 4..]
        .iter()
        .map(&f)
        .max()
        .unwrap_or(0) as f64;
    (late - base) / base * 100.0
}

/// Runs the soak; the process's exit status.
pub(crate) fn main(args: &[String]) -> i32 {
    match parse(args).and_then(run) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("soak: {e}");
            2
        }
    }
}

fn run(args: Args) -> Result<bool, String> {
    let redis = OwnRedis::start()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let total = Duration::from_secs_f64(args.minutes * 60.0);
    eprintln!(
        "soak: {} users x {} sessions on two instances, {:.1} min, Redis {} (own process)",
        args.users, args.sessions, args.minutes, redis.url
    );
    let (samples, counts) = rt.block_on(async {
        let instances = Arc::new([instance(&redis.url).await?, instance(&redis.url).await?]);
        let monitor = Builder::from_config(RedisConfig::from_url(&redis.url).map_err(|e| e.to_string())?)
            .build()
            .map_err(|e| e.to_string())?;
        monitor.init().await.map_err(|e| e.to_string())?;
        let counts = Arc::new(Counts::default());
        let started = Instant::now();
        let deadline = started + total;
        let tasks: Vec<_> = (0..args.users)
            .map(|id| {
                tokio::spawn(user_loop(
                    id,
                    args.sessions,
                    instances.clone(),
                    deadline,
                    counts.clone(),
                ))
            })
            .collect();
        let mut samples = Vec::new();
        println!(
            "| t (s) | ops | RSS (MiB) | Redis used_memory (MiB) | keys | without TTL | logs | largest log | log entries | oldest entry (s) |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for k in 1..=SAMPLES {
            tokio::time::sleep_until((started + total.mul_f64(f64::from(k) / f64::from(SAMPLES))).into())
                .await;
            let s = sample(&monitor, started, &counts).await?;
            println!(
                "| {:.0} | {} | {:.1} | {:.2} | {} | {} | {} | {} | {} | {:.1} |",
                s.at_s,
                s.ops,
                s.rss_kib as f64 / 1024.0,
                s.redis_used as f64 / (1024.0 * 1024.0),
                s.keys,
                s.without_ttl,
                s.logs,
                s.largest_log,
                s.log_entries,
                s.oldest_ms as f64 / 1000.0
            );
            samples.push(s);
        }
        for t in tasks {
            let _ = t.await;
        }
        let _ = monitor.quit().await;
        Ok::<_, String>((samples, counts))
    })?;
    drop(rt);
    drop(redis);

    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let secs = total.as_secs_f64();
    let ops = samples.last().map_or(0, |s| s.ops);
    println!(
        "\n{ops} operations in {secs:.0} s ({:.0}/s): {} protected requests, {} rotations, {} logouts, \
         {} logins, {} theft replays, {} logout-alls, {} session-list checks",
        ops as f64 / secs,
        c(&counts.requests),
        c(&counts.rotations),
        c(&counts.logouts),
        c(&counts.logins),
        c(&counts.replays),
        c(&counts.logout_alls),
        c(&counts.list_checks)
    );
    let unexpected = c(&counts.unexpected);
    for m in counts
        .messages
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        println!("unexpected: {m}");
    }
    let rss = growth(&samples, |s| s.rss_kib);
    let redis_mem = growth(&samples, |s| s.redis_used);
    let without_ttl = samples.iter().map(|s| s.without_ttl).max().unwrap_or(0);
    let oldest = samples.iter().map(|s| s.oldest_ms).max().unwrap_or(0);
    // An entry is trimmed by the next revocation in its bucket once older
    // than the retention (the access lifetime), and the log key expires one
    // retention after its last write: no entry outlives two.
    let log_bound_ms = 2 * ACCESS_TTL.as_millis() as u64;
    let checks = [
        (
            "no unexpected answer",
            unexpected == 0,
            format!("{unexpected}"),
        ),
        (
            "RSS flat once steady (< 10 % growth)",
            rss < 10.0,
            format!("{rss:+.1} %"),
        ),
        (
            "Redis memory flat once steady (< 10 % growth)",
            redis_mem < 10.0,
            format!("{redis_mem:+.1} %"),
        ),
        (
            "every key has a TTL",
            without_ttl == 0,
            format!("{without_ttl} without, at most"),
        ),
        (
            "revocation log within its bound (oldest entry < 2 x access TTL)",
            oldest < log_bound_ms,
            format!(
                "{:.1} s of {:.0} s",
                oldest as f64 / 1000.0,
                log_bound_ms as f64 / 1000.0
            ),
        ),
    ];
    println!();
    let mut ok = true;
    for (what, passed, figure) in checks {
        println!("{} {what}: {figure}", if passed { "PASS" } else { "FAIL" });
        ok &= passed;
    }
    Ok(ok)
}
