//! The login storm rows: how much a protected route slows down while logins
//! hash passwords. One server (the bench's usual one worker thread) serves
//! reissue-tower's `/auth` router over reissue-diesel's `UserStore` (a SQLite
//! file, default argon2 parameters) and `GET /me` behind the reissue layer.
//! `GET /me` is probed lightly (a few connections, paced) alone, then while
//! [`LOGINS`] connections log in in a loop, each as its own user with the
//! right password. The storm is run twice: with `UserStore`'s default argon2
//! bound, and with one hash per core (the bound before it was lowered).

use reissue_core::RevocationMode;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reissue_core::store::{ClientMeta, MemoryStore};
use reissue_core::{KeySet, Reissue};
use reissue_diesel::{EmailPassword, UserStore};
use serde::Deserialize;

use crate::Plan;
use crate::apps::{self, Target};
use crate::fixtures::{self, Cache, Scheme};
use crate::load::{self, Exchange, Fixed, Load, Measurement};
use crate::report::{self, Goal, LoadRow, Outcome, Ratio};
use crate::server::spawn_axum;

/// Concurrent logins of the storm, each connection looping its own user.
pub(crate) const LOGINS: usize = 50;
/// The probe: this many connections, each sending `GET /me` at most once per
/// [`PROBE_INTERVAL`]: a light load, so that its latency is the server's
/// responsiveness and not its throughput.
const PROBE_CONNECTIONS: usize = 4;
const PROBE_INTERVAL: Duration = Duration::from_millis(1);
/// The storm runs this long before the probe starts (the queue fills, argon2
/// work areas are allocated) and this much after it ends.
const STORM_LEAD: Duration = Duration::from_millis(500);
const STORM_TAIL: Duration = Duration::from_millis(200);
/// The goal: `GET /me` p99 during the storm at most this many times its idle p99.
const GOAL: f64 = 2.0;

const PASSWORD: &str = "correct horse battery staple";
const GROUP: &str = "Login storm (reissue-diesel, argon2id)";
const KEYS: [&str; 5] = [
    "login.idle",
    "login.storm.percore",
    "login.storm.percore.logins",
    "login.storm",
    "login.storm.logins",
];

fn storm_email(i: usize) -> String {
    format!("storm-{i}@bench.invalid")
}

const PROBE_EMAIL: &str = "probe@bench.invalid";

/// How many argon2 hashes the server may run at once.
#[derive(Debug, Clone, Copy)]
enum Bound {
    /// Whatever `UserStore` does by default.
    Default,
    /// `hash_concurrency(n)`.
    Set(usize),
}

/// A SQLite file holding the probe user and the storm's users, removed on drop.
struct Users {
    path: PathBuf,
    probe_id: String,
}

impl Drop for Users {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Users {
    fn create() -> Result<Self, String> {
        let path = std::env::temp_dir().join(format!(
            "reissue-bench-{}-{}.db",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
        ));
        let mut users = Self {
            path,
            probe_id: String::new(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        users.probe_id = rt.block_on(async {
            let store = UserStore::connect(&users.url()).map_err(|e| e.to_string())?;
            store.run_migrations().await.map_err(|e| e.to_string())?;
            let creating = (0..LOGINS).map(|i| {
                let store = store.clone();
                async move { store.create_user(&storm_email(i), PASSWORD, &[]).await }
            });
            futures_util::future::try_join_all(creating)
                .await
                .map_err(|e| e.to_string())?;
            let probe = store
                .create_user(PROBE_EMAIL, PASSWORD, &[])
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(probe.id.to_string())
        })?;
        Ok(users)
    }

    fn url(&self) -> String {
        sqlite_url(&self.path)
    }
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// The server: `/auth` and `GET /me` over a `UserStore` on `db`, and an
/// access token of the probe user.
fn start(db: String, bound: Bound) -> Result<Target, String> {
    let (server, token) = spawn_axum("login-storm", move || async move {
        let mut builder = UserStore::builder(db);
        if let Bound::Set(n) = bound {
            builder = builder.hash_concurrency(n);
        }
        let users = builder.connect().map_err(|e| e.to_string())?;
        let keys = KeySet::new(Scheme::Hs256.key()).map_err(|e| e.to_string())?;
        let reissue = Reissue::builder(
            fixtures::config(RevocationMode::Stateless, Cache::On),
            keys,
            Arc::new(MemoryStore::new()),
            users,
        )
        .build()
        .map_err(|e| e.to_string())?;
        let pair = reissue
            .login(
                EmailPassword::new(PROBE_EMAIL, PASSWORD),
                &ClientMeta::default(),
            )
            .await
            .map_err(|e| format!("probe login: {e}"))?;
        let router =
            apps::reissue_router(reissue.verifier().clone()).merge(reissue_tower::router(reissue));
        Ok((pair.access_token, router))
    })?;
    Ok(Target {
        server,
        headers: vec![("authorization", format!("Bearer {token}"))],
    })
}

#[derive(Deserialize)]
struct LoginAnswer {
    access_token: String,
}

/// One storm connection: logs its own user in, again and again.
struct StormLogin {
    body: String,
}

impl Exchange for StormLogin {
    fn request(&mut self, out: &mut Vec<u8>) {
        load::post_json(out, "/auth/login", &[], &self.body);
    }

    fn check(&mut self, status: u16, body: &[u8]) -> Result<(), String> {
        if status != 200 {
            return Err(format!(
                "login: status {status}: {}",
                String::from_utf8_lossy(body)
            ));
        }
        let answer: LoginAnswer =
            serde_json::from_slice(body).map_err(|e| format!("login response: {e}"))?;
        if answer.access_token.is_empty() {
            return Err("login response without an access token".into());
        }
        Ok(())
    }
}

fn probe(target: &Target, load: Load, expect: &str) -> Result<Measurement, String> {
    let headers: Vec<(&str, &str)> = target
        .headers
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .collect();
    let exchange = Fixed::get("/me", &headers, expect);
    let load = Load {
        connections: PROBE_CONNECTIONS,
        ..load
    };
    load::run_paced(target.server.addr, load, Some(PROBE_INTERVAL), |_| {
        Box::new(exchange.clone())
    })
}

/// `GET /me` alone.
fn idle(users: &Users, load: Load) -> Result<Measurement, String> {
    let target = start(users.url(), Bound::Default)?;
    probe(&target, load, &users.probe_id)
}

/// `GET /me` during the storm, and the storm's logins.
fn storm(users: &Users, load: Load, bound: Bound) -> Result<(Measurement, Measurement), String> {
    let target = start(users.url(), bound)?;
    let addr = target.server.addr;
    let storm_load = Load {
        connections: LOGINS,
        warmup: STORM_LEAD + load.warmup,
        measure: load.measure + STORM_TAIL,
    };
    let logins = std::thread::Builder::new()
        .name("login-storm-client".into())
        .spawn(move || {
            load::run(addr, storm_load, |i| {
                let body = serde_json::json!({ "email": storm_email(i), "password": PASSWORD });
                Box::new(StormLogin {
                    body: body.to_string(),
                })
            })
        })
        .map_err(|e| e.to_string())?;
    std::thread::sleep(STORM_LEAD);
    let me = probe(&target, load, &users.probe_id);
    let logins = logins
        .join()
        .map_err(|_| "the storm client panicked".to_owned())?;
    Ok((me?, logins?))
}

fn p99(m: &Measurement) -> Duration {
    m.percentile(0.99)
}

/// Keeps the pass with the lower `GET /me` p99: the least disturbed one.
fn keep_best<T>(
    best: &mut Option<Result<T, String>>,
    new: Result<T, String>,
    p99_of: impl Fn(&T) -> Duration,
) {
    *best = match (best.take(), new) {
        (Some(Err(e)), _) | (_, Err(e)) => Some(Err(e)),
        (Some(Ok(a)), Ok(b)) => Some(Ok(if p99_of(&b) < p99_of(&a) { b } else { a })),
        (None, Ok(b)) => Some(Ok(b)),
    };
}

fn log(key: &str, m: &Result<Measurement, String>, unit: &str) {
    match m {
        Ok(m) => eprintln!(
            "{key}: {:.0} {unit} p50 {} p99 {}",
            m.rate(),
            report::fmt_duration(m.percentile(0.5)),
            report::fmt_duration(p99(m))
        ),
        Err(e) => eprintln!("{key}: FAILED: {e}"),
    }
}

/// The storm rows, if `only` selects any of them.
pub(crate) fn rows(plan: &Plan, only: Option<&str>) -> Vec<LoadRow> {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let hashes = |n: usize| match n {
        1 => "1 hash at a time".to_owned(),
        n => format!("{n} hashes at once"),
    };
    let default = UserStore::connect(":memory:").map_or_else(
        |_| "UserStore's default bound".to_owned(),
        |s| format!("{} (UserStore's default)", hashes(s.hash_concurrency())),
    );
    let per_core = format!("{} (one per core, the old default)", hashes(cores));
    let names = [
        format!("GET /me, no logins ({PROBE_CONNECTIONS} connections, each ≤ 1 request/ms)"),
        format!("GET /me during {LOGINS} logins, {per_core}"),
        format!("POST /auth/login during the storm, {per_core}"),
        format!("GET /me during {LOGINS} logins, {default}"),
        format!("POST /auth/login during the storm, {default}"),
    ];
    if let Some(only) = only
        && !KEYS
            .iter()
            .zip(&names)
            .any(|(k, n)| k.contains(only) || n.contains(only))
    {
        return Vec::new();
    }
    eprintln!("login storm: creating {} users ...", LOGINS + 1);
    let users = match Users::create() {
        Ok(u) => Some(u),
        Err(e) => {
            eprintln!("login storm: FAILED to create the users: {e}");
            None
        }
    };
    let mut idle_best = None;
    let mut percore_best = None;
    let mut default_best = None;
    if let Some(users) = &users {
        for pass in 1..=plan.passes {
            eprint!("[storm pass {pass}/{}] ", plan.passes);
            let m = idle(users, plan.load);
            log("login.idle", &m, "req/s");
            keep_best(&mut idle_best, m, p99);
            for (bound, best, key) in [
                (Bound::Set(cores), &mut percore_best, "login.storm.percore"),
                (Bound::Default, &mut default_best, "login.storm"),
            ] {
                let m = storm(users, plan.load, bound);
                match &m {
                    Ok((me, logins)) => {
                        log(key, &Ok(me.clone()), "req/s");
                        log(&format!("{key}.logins"), &Ok(logins.clone()), "logins/s");
                    }
                    Err(e) => eprintln!("{key}: FAILED: {e}"),
                }
                keep_best(best, m, |(me, _)| p99(me));
            }
        }
    }
    let failed = |e: String| (Outcome::Failed(e.clone()), Outcome::Failed(e));
    let measured = |m: &Measurement| Outcome::Measured {
        rate: m.rate(),
        p50: m.percentile(0.5),
        p99: p99(m),
    };
    let idle_p99 = match &idle_best {
        Some(Ok(m)) => Some(p99(m)),
        _ => None,
    };
    let idle_outcome = match idle_best {
        Some(Ok(m)) => measured(&m),
        Some(Err(e)) => Outcome::Failed(e),
        None => Outcome::Failed("the users could not be created".into()),
    };
    let storm_outcomes = |best: Option<Result<(Measurement, Measurement), String>>| match best {
        Some(Ok((me, logins))) => (measured(&me), measured(&logins)),
        Some(Err(e)) => failed(e),
        None => failed("the users could not be created".into()),
    };
    let (percore_me, percore_logins) = storm_outcomes(percore_best);
    let (default_me, default_logins) = storm_outcomes(default_best);
    let vs_idle = |me: &Outcome, goal: Option<Goal>| match (me, idle_p99) {
        (Outcome::Measured { p99, .. }, Some(idle)) => vec![Ratio {
            value: p99.as_secs_f64() / idle.as_secs_f64(),
            of: "p99 ÷ idle p99".to_owned(),
            goal,
        }],
        _ => Vec::new(),
    };
    let rate = |o: &Outcome| match o {
        Outcome::Measured { rate, .. } => Some(*rate),
        _ => None,
    };
    let logins_vs_percore = match (rate(&default_logins), rate(&percore_logins)) {
        (Some(a), Some(b)) => vec![Ratio {
            value: a / b,
            of: "÷ one hash per core".to_owned(),
            goal: None,
        }],
        _ => Vec::new(),
    };
    let row = |i: usize, unit: &'static str, outcome: Outcome, ratios: Vec<Ratio>| LoadRow {
        key: KEYS[i],
        group: GROUP,
        name: names[i].clone(),
        unit,
        outcome,
        vs_bare: None,
        ratios,
        note: None,
    };
    let percore_ratios = vs_idle(&percore_me, None);
    let default_ratios = vs_idle(&default_me, Some(Goal::AtMost(GOAL)));
    vec![
        row(0, "req/s", idle_outcome, Vec::new()),
        row(1, "req/s", percore_me, percore_ratios),
        row(2, "logins/s", percore_logins, Vec::new()),
        row(3, "req/s", default_me, default_ratios),
        row(4, "logins/s", default_logins, logins_vs_percore),
    ]
}
