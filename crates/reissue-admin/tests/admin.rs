//! The `reissue-admin` binary, run as a process against the real Redis on
//! 6379 (a key prefix per test), real PostgreSQL and SQLite, a Redis of its
//! own that may evict, and a Redis Cluster; sessions come from logins
//! through an app built here as any application builds one from the shared
//! settings (`StoreArgs`): axum, instant revocation, on 127.0.0.1:0.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::routing::get;
use clap::Parser;
use reissue_admin::StoreArgs;
use reissue_core::store::ClientMeta;
use reissue_core::{Algorithm, Config, Key, KeySet, Reissue, UserClaims};
use reissue_diesel::{EmailPassword, UserStore};
use reissue_test_support::{RedisServer, deploy};
use reissue_tower::{AuthUser, ReissueLayer};
use serde_json::{Value, json};

const REDIS_URL: &str = "redis://127.0.0.1:6379";
const PASSWORD: &str = "correct horse battery staple";
const SECRET: &str = "admin-cli-test-secret-0123456789abcdef-0123";

static NEXT: AtomicU64 = AtomicU64::new(0);

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn postgres_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The settings one test shares between the CLI and its app: a database, a
/// Redis and a key prefix of its own.
struct Setup {
    vars: HashMap<String, String>,
    prefix: String,
    redis_port: Option<u16>,
    _dir: tempfile::TempDir,
}

enum Db {
    Sqlite,
    Postgres,
}

impl Setup {
    fn new(db: Db) -> Self {
        Self::on(db, Some(REDIS_URL.to_owned()), Some(6379))
    }

    fn on(db: Db, redis_url: Option<String>, redis_port: Option<u16>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let prefix = format!("reissue-admin-test:{}:", unique());
        let mut vars = HashMap::new();
        let database = match db {
            Db::Sqlite => format!("sqlite://{}", dir.path().join("users.sqlite").display()),
            Db::Postgres => postgres_url(),
        };
        vars.insert("DATABASE_URL".to_owned(), database);
        if let Some(url) = redis_url {
            vars.insert("REDIS_URL".to_owned(), url);
        }
        vars.insert("REISSUE_REDIS_PREFIX".to_owned(), prefix.clone());
        Self {
            vars,
            prefix,
            redis_port,
            _dir: dir,
        }
    }

    fn set(&mut self, var: &str, value: &str) -> &mut Self {
        self.vars.insert(var.to_owned(), value.to_owned());
        self
    }

    fn unset(&mut self, var: &str) -> &mut Self {
        self.vars.remove(var);
        self
    }

    /// Runs the CLI with these variables only, `stdin` as its input.
    fn admin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = Command::new(env!("CARGO_BIN_EXE_reissue-admin"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(&self.vars)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run reissue-admin");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Run {
            args: args.join(" "),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `--json <args>`, which must succeed: its document.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.admin(&all, "").ok_json()
    }

    fn create_user(&self, email: &str) -> String {
        let run = self.admin(
            &["--json", "users", "create", email],
            &format!("{PASSWORD}\n"),
        );
        let user = run.ok_json();
        assert_eq!(user["email"], email, "{run:?}");
        // An operator typed the address: what REISSUE_ADMIN_EMAILS needs.
        assert_eq!(user["vouched"], true, "{run:?}");
        user["id"].as_str().unwrap().to_owned()
    }

    /// An app's `Reissue` over these settings, connected as the CLI
    /// connects: the same user database, Redis, prefix and lifetimes, and
    /// instant revocation (the default).
    async fn app_reissue(&self) -> Reissue<UserStore> {
        #[derive(Parser)]
        struct App {
            #[command(flatten)]
            store: StoreArgs,
        }
        let mut flags = vec!["app".to_owned()];
        for (var, flag) in [
            ("DATABASE_URL", "--database-url"),
            ("REDIS_URL", "--redis-url"),
            ("REISSUE_REDIS_PREFIX", "--redis-prefix"),
            ("REISSUE_ACCESS_TTL", "--access-ttl"),
            ("REISSUE_SESSION_MAX_AGE", "--session-max-age"),
        ] {
            if let Some(value) = self.vars.get(var) {
                flags.extend([flag.to_owned(), value.clone()]);
            }
        }
        let args = App::try_parse_from(flags)
            .expect("the shared settings")
            .store;
        let users = args.connect_users().await.expect("the user database");
        let store = args
            .connect_redis()
            .await
            .expect("Redis")
            .expect("REDIS_URL is set");
        let config = Config::new("reissue-admin-test", "reissue-admin-test")
            .access_ttl(args.access_ttl())
            .session_max_age(args.session_max_age());
        let key = Key::hmac("k1", Algorithm::HS256, SECRET.as_bytes()).unwrap();
        Reissue::builder(config, KeySet::new(key).unwrap(), Arc::new(store), users)
            .build()
            .expect("the app's Reissue")
    }

    /// The keys under the prefix, counted by `redis-cli --scan` on `port`.
    fn keys_on(&self, port: u16) -> usize {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "--scan", "--pattern"])
            .arg(format!("{}*", self.prefix))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    }

    fn redis_cli(&self, args: &[&str]) -> String {
        let port = self.redis_port.expect("a Redis port").to_string();
        let out = Command::new("redis-cli")
            .args(["-p", &port])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if self.redis_port == Some(6379) {
            let script = "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 1";
            let _ = Command::new("redis-cli")
                .args(["-p", "6379", "EVAL", script, "0"])
                .arg(format!("{}*", self.prefix))
                .stdout(Stdio::null())
                .status();
        }
    }
}

#[derive(Debug)]
struct Run {
    /// Read in failure messages (Debug).
    #[allow(dead_code)]
    args: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "{self:?}");
        self
    }

    #[track_caller]
    fn ok_json(&self) -> Value {
        self.ok();
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// Failed with one line on stderr, nothing on stdout: the line.
    #[track_caller]
    fn failed(&self) -> &str {
        assert_eq!(self.code, Some(1), "{self:?}");
        assert_eq!(self.stdout, "", "{self:?}");
        let line = self.stderr.strip_suffix('\n').unwrap_or(&self.stderr);
        assert!(
            !line.is_empty() && !line.contains('\n'),
            "one line: {self:?}"
        );
        line
    }
}

/// `/me` of the app: the roles and session of the access token.
async fn me(user: AuthUser<UserClaims>) -> Json<Value> {
    Json(json!({ "roles": user.claims.roles, "sid": user.session_id.as_str() }))
}

/// The app over `reissue` (the `/auth` routes and `/me` behind the layer),
/// served on 127.0.0.1:0 by `rt`.
fn serve(rt: &tokio::runtime::Runtime, reissue: Reissue<UserStore>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/me", get(me))
        .route_layer(ReissueLayer::new(reissue.verifier().clone()))
        .merge(reissue_tower::router(reissue));
    rt.spawn(async move {
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app).await
    });
    base
}

struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    async fn login(&self, email: &str) -> Value {
        let res = self
            .client
            .post(format!("{}/auth/login", self.base))
            .json(&serde_json::json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    async fn me(&self, access: &str) -> (u16, Value) {
        let res = self
            .client
            .get(format!("{}/me", self.base))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn reissue(&self, refresh: &str) -> u16 {
        self.client
            .post(format!("{}/auth/reissue", self.base))
            .bearer_auth(refresh)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// `/me`'s status once it is `want`, waiting at most 5 s (the revocation
    /// feed delivers asynchronously; no figure is asserted).
    async fn me_becomes(&self, access: &str, want: u16) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (status, _) = self.me(access).await;
            if status == want || Instant::now() > deadline {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn sids(list: &Value) -> BTreeSet<String> {
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sid"].as_str().unwrap().to_owned())
        .collect()
}

/// Create, set roles, log in through the app twice, list (the sids match),
/// end one (its refresh token fails, the app refuses its access token, the
/// other session lives), end it again (unknown), end all, list (empty).
fn sessions_through_an_app(db: Db) {
    let setup = Setup::new(db);
    let email = format!("ada-{}@example.com", unique());
    let id = setup.create_user(&email);
    let user = setup.json(&["users", "set-roles", &email, "ops", "auditor"]);
    assert_eq!(user["roles"], serde_json::json!(["ops", "auditor"]));
    assert_eq!(user["id"], id.as_str());

    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = serve(&rt, rt.block_on(setup.app_reissue()));
    let http = Http {
        base,
        client: reqwest::Client::new(),
    };
    let (a, b) = rt.block_on(async { (http.login(&email).await, http.login(&email).await) });
    let (at_a, rt_a) = (
        a["access_token"].as_str().unwrap(),
        a["refresh_token"].as_str().unwrap(),
    );
    let (at_b, rt_b) = (
        b["access_token"].as_str().unwrap(),
        b["refresh_token"].as_str().unwrap(),
    );
    let (status, me_a) = rt.block_on(http.me(at_a));
    assert_eq!(status, 200);
    assert_eq!(
        me_a["roles"],
        serde_json::json!(["ops", "auditor"]),
        "the roles set by the CLI"
    );
    let sid_a = me_a["sid"].as_str().unwrap().to_owned();
    let sid_b = rt.block_on(http.me(at_b)).1["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    // By email and by id alike; the sids are the app's.
    for who in [email.as_str(), id.as_str()] {
        let list = setup.json(&["sessions", "list", who]);
        assert_eq!(
            sids(&list),
            BTreeSet::from([sid_a.clone(), sid_b.clone()]),
            "{list}"
        );
        assert_eq!(list["user"]["id"], id.as_str());
    }
    let text = setup.admin(&["sessions", "list", &email], "");
    assert!(
        text.ok().stdout.starts_with("2 live sessions of user"),
        "{text:?}"
    );
    assert!(
        text.stdout.contains(&sid_a) && text.stdout.contains(&sid_b),
        "{text:?}"
    );

    let ended = setup.json(&["sessions", "end", &email, &sid_a]);
    assert_eq!(ended["ended"], serde_json::json!([sid_a]));
    assert_eq!(
        rt.block_on(http.me_becomes(at_a, 401)),
        401,
        "instant mode refuses the ended session"
    );
    assert_eq!(
        rt.block_on(http.reissue(rt_a)),
        401,
        "its refresh token is dead"
    );
    assert_eq!(rt.block_on(http.me(at_b)).0, 200, "the other session lives");
    assert_eq!(
        sids(&setup.json(&["sessions", "list", &id])),
        BTreeSet::from([sid_b.clone()])
    );

    let again = setup.admin(&["sessions", "end", &email, &sid_a], "");
    let line = again.failed();
    assert!(
        line.contains("no live session") && line.contains(&sid_a),
        "{line}"
    );

    let all = setup.json(&["sessions", "end-all", &id]);
    assert_eq!(all["ended"], serde_json::json!([sid_b]));
    assert_eq!(rt.block_on(http.me_becomes(at_b, 401)), 401);
    assert_eq!(rt.block_on(http.reissue(rt_b)), 401);
    assert_eq!(
        sids(&setup.json(&["sessions", "list", &email])),
        BTreeSet::new()
    );
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// `users set-roles` and `users set-password` end every session of the
/// user: no access token with the old roles (or from before the new
/// password) is accepted afterwards, nor its refresh token.
#[test]
fn credential_changes_end_sessions() {
    let setup = Setup::new(Db::Sqlite);
    let email = format!("cred-{}@example.com", unique());
    let id = setup.create_user(&email);
    setup.json(&["users", "set-roles", &id, "ops"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = serve(&rt, rt.block_on(setup.app_reissue()));
    let http = Http {
        base,
        client: reqwest::Client::new(),
    };
    let old = rt.block_on(http.login(&email));
    let (at, refresh) = (
        old["access_token"].as_str().unwrap(),
        old["refresh_token"].as_str().unwrap(),
    );
    assert_eq!(
        rt.block_on(http.me(at)).1["roles"],
        serde_json::json!(["ops"])
    );

    let text = setup.admin(&["users", "set-roles", &id, "auditor"], "");
    assert!(text.ok().stdout.contains("ended 1 session"), "{text:?}");
    assert_eq!(
        rt.block_on(http.me_becomes(at, 401)),
        401,
        "old roles refused"
    );
    assert_eq!(rt.block_on(http.reissue(refresh)), 401);
    let new = rt.block_on(http.login(&email));
    let at = new["access_token"].as_str().unwrap();
    assert_eq!(
        rt.block_on(http.me(at)).1["roles"],
        serde_json::json!(["auditor"])
    );

    let text = setup.admin(&["users", "set-password", &email], "another-password-1\n");
    assert!(text.ok().stdout.contains("ended 1 session"), "{text:?}");
    assert_eq!(rt.block_on(http.me_becomes(at, 401)), 401);
    let status = rt.block_on(async {
        http.client
            .post(format!("{}/auth/login", http.base))
            .json(&serde_json::json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 401, "the old password no longer works");
}

#[test]
fn sessions_through_an_app_on_sqlite() {
    sessions_through_an_app(Db::Sqlite);
}

#[test]
fn sessions_through_an_app_on_postgres() {
    sessions_through_an_app(Db::Postgres);
}

/// Logs `email` in `n` times through the app's `Reissue` (no HTTP needed).
fn log_in(rt: &tokio::runtime::Runtime, reissue: &Reissue<UserStore>, email: &str, n: usize) {
    rt.block_on(async {
        for _ in 0..n {
            reissue
                .login(EmailPassword::new(email, PASSWORD), &ClientMeta::default())
                .await
                .expect("login");
        }
    });
}

#[test]
fn health_reports_the_policy_and_a_key_count_that_moves() {
    let setup = Setup::new(Db::Sqlite);
    let health = setup.json(&["health"]);
    assert_eq!(health["ok"], true, "{health}");
    assert_eq!(health["store"]["reachable"], true);
    assert_eq!(health["store"]["deployment"], "single");
    assert_eq!(health["store"]["eviction"], "noeviction");
    assert_eq!(health["store"]["keys"], 0, "a fresh prefix: {health}");
    // One server without replicas promises no failover: nothing to confirm.
    assert_eq!(health["store"]["replication"][0]["replicas"], 0, "{health}");
    assert_eq!(
        health["store"]["unconfirmed_primaries"],
        json!([]),
        "{health}"
    );
    assert_eq!(health["database"]["reachable"], true);
    assert!(health["store"]["latency_ms"].as_f64().unwrap() >= 0.0);

    let email = format!("keys-{}@example.com", unique());
    let id = setup.create_user(&email);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reissue = rt.block_on(setup.app_reissue());
    log_in(&rt, &reissue, &email, 3);
    let after_login = setup.json(&["health"])["store"]["keys"].as_u64().unwrap();
    assert!(after_login > 0);
    assert_eq!(
        after_login as usize,
        setup.keys_on(6379),
        "what redis-cli counts"
    );

    setup.json(&["sessions", "end-all", &id]);
    let after_end = setup.json(&["health"])["store"]["keys"].as_u64().unwrap();
    // The user's key holding the three sessions goes; the revocation log of
    // their end comes (the feed's retention announcements stay as they were).
    assert_eq!(
        after_end, after_login,
        "one key out (the sessions), one in (the revocation log)"
    );
    assert_eq!(after_end as usize, setup.keys_on(6379));

    let text = setup.admin(&["health"], "");
    assert!(
        text.ok().stdout.contains("eviction  noeviction"),
        "{text:?}"
    );
    assert!(
        text.stdout
            .contains(&format!("keys      {after_end} under `{}`", setup.prefix)),
        "{text:?}"
    );
    rt.shutdown_timeout(Duration::from_secs(1));
}

#[test]
fn health_fails_on_a_redis_that_may_evict() {
    let redis = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let setup = Setup::on(Db::Sqlite, Some(redis.url()), Some(redis.port()));
    let run = setup.admin(&["--json", "health"], "");
    assert_eq!(run.code, Some(1), "{run:?}");
    let health: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(health["ok"], false);
    assert_eq!(health["store"]["eviction"], "allkeys-lru");
    assert_eq!(health["store"]["may_evict"], true);
    let text = setup.admin(&["health"], "");
    assert!(
        text.stdout.contains("allkeys-lru (may evict sessions"),
        "{text:?}"
    );
    assert!(text.stdout.ends_with("NOT OK\n"), "{text:?}");
}

#[test]
fn health_counts_keys_on_every_primary_of_a_cluster() {
    let cluster = deploy::Cluster::shared();
    cluster.wait_healthy(Duration::from_secs(30));
    let setup = Setup::on(Db::Sqlite, Some(cluster.url()), None);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reissue = rt.block_on(setup.app_reissue());
    // Users spread over buckets, and so over the primaries.
    for i in 0..12 {
        let email = format!("c{i}-{}@example.com", unique());
        setup.create_user(&email);
        log_in(&rt, &reissue, &email, 1);
    }
    let health = setup.json(&["health"]);
    assert_eq!(health["store"]["deployment"], "cluster", "{health}");
    let counted = health["store"]["keys"].as_u64().unwrap() as usize;
    let per_primary: Vec<usize> = cluster
        .primaries()
        .iter()
        .map(|p| setup.keys_on(*p))
        .collect();
    assert_eq!(
        counted,
        per_primary.iter().sum::<usize>(),
        "{per_primary:?}"
    );
    assert!(
        per_primary.iter().filter(|n| **n > 0).count() >= 2,
        "keys on several primaries: {per_primary:?}"
    );
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// A cluster primary whose replica is gone cannot have its revocations
/// confirmed: health names it and says NOT OK, until the replica is back.
#[test]
fn health_names_a_cluster_primary_without_a_replica() {
    let mut cluster = deploy::Cluster::start();
    cluster.wait_healthy(Duration::from_secs(30));
    let setup = Setup::on(Db::Sqlite, Some(cluster.url()), None);
    let health = setup.json(&["health"]);
    assert_eq!(health["ok"], true, "{health}");
    let replication = health["store"]["replication"].as_array().unwrap();
    assert_eq!(replication.len(), 3, "{health}");
    assert!(replication.iter().all(|r| r["replicas"] == 1), "{health}");

    let primary = cluster.primaries()[0];
    let replica = cluster.replica_of(primary);
    cluster.node(replica).kill();
    let run = setup.admin(&["--json", "health"], "");
    assert_eq!(run.code, Some(1), "{run:?}");
    let health: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(health["ok"], false, "{health}");
    let named = health["store"]["unconfirmed_primaries"].as_array().unwrap();
    assert_eq!(named.len(), 1, "{health}");
    assert!(
        named[0].as_str().unwrap().ends_with(&format!(":{primary}")),
        "{health}"
    );
    let text = setup.admin(&["health"], "");
    assert!(
        text.stdout.contains("not confirmed by a replica"),
        "{text:?}"
    );
    assert!(text.stdout.ends_with("NOT OK\n"), "{text:?}");

    cluster.node(replica).restart();
    cluster.wait_healthy(Duration::from_secs(30));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let run = setup.admin(&["--json", "health"], "");
        if run.code == Some(0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replica came back, health still fails: {run:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Ended by the CLI, a session stays in the revocation log as long as the
/// apps' access tokens live, not the store's 10-minute default.
#[test]
fn the_cli_keeps_revocations_as_long_as_the_apps_need() {
    let mut setup = Setup::new(Db::Sqlite);
    setup.set("REISSUE_ACCESS_TTL", "3600");
    let email = format!("keep-{}@example.com", unique());
    let id = setup.create_user(&email);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reissue = rt.block_on(setup.app_reissue());
    log_in(&rt, &reissue, &email, 1);
    let sid = sids(&setup.json(&["sessions", "list", &id]))
        .pop_first()
        .unwrap();
    drop(reissue);
    setup.json(&["sessions", "end", &id, &sid]);
    let logs = setup.redis_cli(&["--scan", "--pattern", &format!("{}*:rv", setup.prefix)]);
    let log = logs.lines().next().expect("a revocation log");
    let pttl: u64 = setup.redis_cli(&["PTTL", log]).parse().unwrap();
    assert!(pttl > 3_600_000, "the log lives {pttl} ms");
    assert!(
        setup
            .redis_cli(&["ZSCORE", log, &sid])
            .parse::<u64>()
            .is_ok(),
        "the session is in it"
    );
    rt.shutdown_timeout(Duration::from_secs(1));
}

#[test]
fn errors_are_one_line_and_non_zero() {
    let mut setup = Setup::new(Db::Sqlite);
    let email = format!("err-{}@example.com", unique());
    let id = setup.create_user(&email);

    let line = setup
        .admin(&["sessions", "list", "nobody@example.com"], "")
        .failed()
        .to_owned();
    assert_eq!(line, "no user with id or email `nobody@example.com`");
    let line = setup
        .admin(&["sessions", "end-all", "987654321"], "")
        .failed()
        .to_owned();
    assert!(line.contains("987654321"), "{line}");
    let line = setup
        .admin(&["users", "set-roles", "nobody@example.com", "x"], "")
        .failed()
        .to_owned();
    assert!(line.starts_with("no user"), "{line}");
    let line = setup
        .admin(&["sessions", "end", &id, "not-a-sid"], "")
        .failed()
        .to_owned();
    assert!(line.contains("no live session `not-a-sid`"), "{line}");
    // A session id is base64url: one may start with `-`, and is not a flag.
    let dash = "-AAAAAAAAAAAAAAAAAAAAA";
    let line = setup
        .admin(&["sessions", "end", &id, dash], "")
        .failed()
        .to_owned();
    assert!(
        line.contains(&format!("no live session `{dash}`")),
        "{line}"
    );
    let line = setup
        .admin(&["users", "set-roles", &id, "bad role"], "")
        .failed()
        .to_owned();
    assert!(line.contains("role"), "{line}");

    // A taken email; a password too short, and none at all: never echoed.
    let run = setup.admin(&["users", "create", &email], &format!("{PASSWORD}\n"));
    assert!(run.failed().contains("already exists"), "{run:?}");
    let short = "hunter2";
    let run = setup.admin(
        &["users", "create", "new@example.com"],
        &format!("{short}\n"),
    );
    assert!(!run.failed().contains(short), "{run:?}");
    assert!(
        setup
            .admin(&["users", "create", "new@example.com"], "")
            .failed()
            .starts_with("password:")
    );
    // No flag takes a password.
    let run = setup.admin(
        &["users", "create", "new@example.com", "--password", PASSWORD],
        "",
    );
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        !run.stderr.contains(PASSWORD) || run.stderr.contains("unexpected argument"),
        "{run:?}"
    );

    // Redis that does not answer, with credentials in its URL: one line
    // naming the variable, the password not in it.
    setup.set("REDIS_URL", "redis://admin:s3cret-pw@127.0.0.1:1");
    for args in [
        &["sessions", "list", email.as_str()][..],
        &["sessions", "end-all", &id],
    ] {
        let run = setup.admin(args, "");
        let line = run.failed();
        assert!(line.starts_with("REDIS_URL: "), "{line}");
        assert!(!line.contains("s3cret-pw"), "{line}");
    }
    let run = setup.admin(&["health"], "");
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stdout.contains("store     unreachable: REDIS_URL: "),
        "{run:?}"
    );
    assert!(!run.stdout.contains("s3cret-pw"), "{run:?}");
    // Another scheme is refused, not taken for redis:// on its host.
    for url in ["mongodb://127.0.0.1", "127.0.0.1:6379", "redis//127.0.0.1"] {
        setup.set("REDIS_URL", url);
        let line = setup
            .admin(&["sessions", "list", &id], "")
            .failed()
            .to_owned();
        assert!(
            line.starts_with("REDIS_URL: expected a redis://"),
            "{url}: {line}"
        );
    }
    setup
        .set("REDIS_URL", REDIS_URL)
        .set("REISSUE_ACCESS_TTL", "soon");
    assert!(
        setup
            .admin(&["sessions", "list", &id], "")
            .failed()
            .starts_with("REISSUE_ACCESS_TTL: ")
    );
    setup.unset("REISSUE_ACCESS_TTL");

    // Without Redis there is nothing to administer: said so. Users still work.
    setup.unset("REDIS_URL");
    let line = setup
        .admin(&["sessions", "list", &id], "")
        .failed()
        .to_owned();
    assert!(line.starts_with("REDIS_URL is unset"), "{line}");
    let health = setup.json(&["health"]);
    assert_eq!(health["store"]["kind"], "memory");
    assert_eq!(health["ok"], true);
    setup.json(&["users", "set-roles", &id, "ops"]);

    // A database that does not open.
    setup.set("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none");
    let line = setup
        .admin(&["users", "set-roles", &id, "ops"], "")
        .failed()
        .to_owned();
    assert!(line.starts_with("DATABASE_URL: "), "{line}");
}

#[test]
fn flags_stand_in_for_variables_and_help_lists_both() {
    let setup = Setup::new(Db::Sqlite);
    let email = format!("flags-{}@example.com", unique());
    let id = setup.create_user(&email);
    // Nothing in the environment but PATH: every setting as a flag.
    let run = Command::new(env!("CARGO_BIN_EXE_reissue-admin"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(["--database-url", &setup.vars["DATABASE_URL"]])
        .args([
            "--redis-url",
            REDIS_URL,
            "--redis-prefix",
            &setup.prefix,
            "--json",
        ])
        .args(["sessions", "list", &id])
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let list: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(list["user"]["email"], email.as_str());

    let help = setup.admin(&["--help"], "");
    for (flag, var) in [
        ("--database-url", "DATABASE_URL"),
        ("--redis-url", "REDIS_URL"),
        ("--redis-prefix", "REISSUE_REDIS_PREFIX"),
        ("--access-ttl", "REISSUE_ACCESS_TTL"),
        ("--session-max-age", "REISSUE_SESSION_MAX_AGE"),
        ("--json", "sessions"),
    ] {
        assert!(
            help.ok().stdout.contains(flag) && help.stdout.contains(var),
            "{flag} {var}: {help:?}"
        );
    }
    // The URLs may hold passwords: --help names their variables, not their values.
    assert!(
        !help.stdout.contains(&setup.vars["DATABASE_URL"]),
        "{help:?}"
    );
    assert!(!help.stdout.contains("127.0.0.1:6379"), "{help:?}");
    let create = setup.admin(&["users", "create", "--help"], "");
    assert!(create.ok().stdout.contains("standard input"), "{create:?}");
}

/// A thief rotating a stolen refresh token as fast as it can, from several
/// connections at once, does not outrun `sessions end-all`: afterwards no
/// token of the user works and no session is listed.
#[test]
fn end_all_wins_over_parallel_rotation() {
    let setup = Setup::new(Db::Sqlite);
    let email = format!("race-{}@example.com", unique());
    let id = setup.create_user(&email);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = serve(&rt, rt.block_on(setup.app_reissue()));
    let http = std::sync::Arc::new(Http {
        base,
        client: reqwest::Client::new(),
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut thieves = Vec::new();
    for _ in 0..4 {
        let pair = rt.block_on(http.login(&email));
        let (http, stop) = (http.clone(), stop.clone());
        thieves.push(rt.spawn(async move {
            let mut refresh = pair["refresh_token"].as_str().unwrap().to_owned();
            let mut access = pair["access_token"].as_str().unwrap().to_owned();
            let mut rotations = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let res = http
                    .client
                    .post(format!("{}/auth/reissue", http.base))
                    .bearer_auth(&refresh)
                    .send()
                    .await
                    .unwrap();
                if res.status() != 200 {
                    break;
                }
                let next: Value = res.json().await.unwrap();
                refresh = next["refresh_token"].as_str().unwrap().to_owned();
                access = next["access_token"].as_str().unwrap().to_owned();
                rotations += 1;
            }
            (refresh, access, rotations)
        }));
    }
    std::thread::sleep(Duration::from_millis(200));
    let ended = setup.json(&["sessions", "end-all", &id]);
    assert_eq!(ended["ended"].as_array().unwrap().len(), 4, "{ended}");
    stop.store(true, Ordering::Relaxed);
    let last: Vec<(String, String, u32)> = rt.block_on(async { futures_join(thieves).await });
    assert!(
        last.iter().any(|(_, _, n)| *n > 0),
        "the thieves did rotate: {last:?}"
    );
    for (refresh, access, _) in &last {
        assert_eq!(
            rt.block_on(http.reissue(refresh)),
            401,
            "a last refresh token still works"
        );
        assert_eq!(
            rt.block_on(http.me_becomes(access, 401)),
            401,
            "a last access token still works"
        );
    }
    assert_eq!(
        sids(&setup.json(&["sessions", "list", &id])),
        BTreeSet::new()
    );
    rt.shutdown_timeout(Duration::from_secs(1));
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
