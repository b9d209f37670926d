//! The harness of the HTTP conformance suite: real servers of both example
//! apps on `127.0.0.1:0`, each with a fresh SQLite file and either the memory
//! store or the shared Redis under a prefix of its own, driven with reqwest.
//!
//! The scenarios live in `tests/contract.rs`; each is written once and run
//! against every [`Adapter`] × [`Store`].
#![forbid(unsafe_code)]

pub mod surface;

use std::collections::HashMap;
use std::future::Future;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The HS256 secret every test server signs with, so scenarios can forge
/// tokens that differ from real ones in exactly one respect.
pub const TEST_SECRET: &str = "conformance-suite-test-secret-0123456789abcdef";
/// Another secret of the same shape, for "signed by someone else".
pub const OTHER_SECRET: &str = "an-attacker-secret-that-is-not-the-servers-0123";
/// The `kid` of the example apps' key.
pub const KID: &str = "hs256-1";
/// Issuer and audience of the example apps by default.
pub const ISSUER: &str = "reissue-example";
/// See [`ISSUER`].
pub const AUDIENCE: &str = "reissue-example";
/// The shared Redis of the test machine.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
/// A password long enough for signup.
pub const PASSWORD: &str = "correct horse battery staple";
/// The test GeoIP database (see `reissue_test_support::geoip`).
pub const GEOIP_DB: &str = reissue_test_support::geoip::TEST_DB;

/// Which example app serves the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    /// `examples/axum-app` (reissue-tower).
    Axum,
    /// `examples/actix-app` (reissue-actix).
    Actix,
    /// `examples/sqlx-app` (reissue-tower, its users in a Postgres table of
    /// its own through sqlx), in a fresh schema of the test database
    /// (`DATABASE_URL` when it is a Postgres URL, else
    /// `postgres://postgres@127.0.0.1:5432/test`). It serves the login and
    /// reissue rows only (the `sqlx` cells of `tests/contract.rs`).
    Sqlx,
}

/// Where refresh sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The in-process memory store (`REDIS_URL` unset).
    Memory,
    /// The shared Redis, under a key prefix unique to each server.
    Redis,
    /// A Redis Cluster of 3 primaries and 3 replicas, started once for the
    /// test binary (`deploy::Cluster::shared`), under a prefix per server.
    Cluster,
}

/// The test deployments (Redis Cluster, Sentinel), and a Redis of a
/// test's own to kill at will.
pub use reissue_test_support::{RedisServer, deploy};

/// One cell of the matrix a scenario runs in.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The app.
    pub adapter: Adapter,
    /// The store.
    pub store: Store,
}

impl Target {
    /// Starts a server of this target with extra environment variables.
    pub fn start(&self, env: &[(&str, &str)]) -> TestServer {
        TestServer::start(self.adapter, self.store, env)
    }
}

/// Runs one scenario on a fresh current-thread runtime.
pub fn run<F, Fut>(target: Target, scenario: F)
where
    F: FnOnce(Target) -> Fut,
    Fut: Future<Output = ()>,
{
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("test runtime")
        .block_on(scenario(target));
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A number unique within this process.
pub fn unique() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A running example app. Stops on drop.
#[derive(Debug)]
pub struct TestServer {
    base: String,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    redis_prefix: Option<String>,
    clean_shared: bool,
    database_url: String,
    /// The Postgres URL and schema of a sqlx-app server, dropped after it.
    pg_schema: Option<(String, String)>,
    _db: tempfile::TempDir,
}

impl TestServer {
    /// Binds `127.0.0.1:0` and serves `adapter` with `store`; `env` adds to or
    /// overrides the harness's variables (`REISSUE_*`, `REDIS_URL`...).
    pub fn start(adapter: Adapter, store: Store, env: &[(&str, &str)]) -> Self {
        let db = tempfile::tempdir().expect("temp dir");
        let mut vars: HashMap<String, String> = HashMap::new();
        vars.insert(
            "DATABASE_URL".into(),
            format!("sqlite://{}", db.path().join("users.sqlite").display()),
        );
        vars.insert("REISSUE_JWT_SECRET".into(), TEST_SECRET.into());
        let mut redis_prefix = None;
        if matches!(store, Store::Redis | Store::Cluster) {
            let prefix = format!(
                "reissue-conformance:{}:{}:{}:",
                std::process::id(),
                unique(),
                now()
            );
            let url = match store {
                Store::Cluster => deploy::Cluster::shared().url(),
                _ => REDIS_URL.into(),
            };
            vars.insert("REDIS_URL".into(), url);
            vars.insert("REISSUE_REDIS_PREFIX".into(), prefix.clone());
            redis_prefix = Some(prefix);
        }
        let mut pg_schema = None;
        if adapter == Adapter::Sqlx {
            let (url, schema) = postgres_schema();
            vars.insert("DATABASE_URL".into(), url);
            vars.insert("REISSUE_ISSUER".into(), ISSUER.into());
            vars.insert("REISSUE_AUDIENCE".into(), AUDIENCE.into());
            pg_schema = Some(schema);
        }
        for (k, v) in env {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        // Only the shared Redis is cleaned after the server; the cluster
        // dies with the test process.
        let clean_shared = vars.get("REDIS_URL").map(String::as_str) == Some(REDIS_URL);
        let database_url = vars["DATABASE_URL"].clone();
        if !clean_shared && store != Store::Cluster {
            redis_prefix = None;
        }

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("local addr");
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();

        let sqlx_vars = vars.clone();
        let build = move || async move {
            example_common::Settings::from_lookup(|name| vars.get(name).cloned())
                .map_err(|e| e.to_string())?
                .build()
                .await
                .map_err(|e| e.to_string())
        };
        let name = format!("{adapter:?}-{}", addr.port()).to_lowercase();
        let spawned = match adapter {
            Adapter::Sqlx => std::thread::Builder::new().name(name).spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("server runtime");
                rt.block_on(async move {
                    let built = match sqlx_app::Settings::from_lookup(|n| sqlx_vars.get(n).cloned())
                    {
                        Ok(settings) => settings.connect().await,
                        Err(e) => Err(e),
                    };
                    let reissue = match built {
                        Ok(r) => r,
                        Err(e) => return drop(ready_tx.send(Err(e))),
                    };
                    let _ = ready_tx.send(Ok(()));
                    tokio::select! {
                        r = sqlx_app::serve(listener, reissue) => {
                            if let Err(e) = r { eprintln!("sqlx-app server failed: {e}") }
                        }
                        _ = stop_rx => {}
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(1));
            }),
            Adapter::Axum => std::thread::Builder::new().name(name).spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("server runtime");
                rt.block_on(async move {
                    let state = match build().await {
                        Ok(s) => s,
                        Err(e) => return drop(ready_tx.send(Err(e))),
                    };
                    let _ = ready_tx.send(Ok(()));
                    tokio::select! {
                        r = axum_app::serve(listener, state) => {
                            if let Err(e) = r { eprintln!("axum server failed: {e}") }
                        }
                        _ = stop_rx => {}
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(1));
            }),
            Adapter::Actix => std::thread::Builder::new().name(name).spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let state = match build().await {
                        Ok(s) => s,
                        Err(e) => return drop(ready_tx.send(Err(e))),
                    };
                    let _ = ready_tx.send(Ok(()));
                    tokio::select! {
                        r = actix_app::serve(listener, state) => {
                            if let Err(e) = r { eprintln!("actix server failed: {e}") }
                        }
                        _ = stop_rx => {}
                    }
                    actix_web::rt::System::current().stop();
                });
            }),
        };
        spawned.expect("spawn server thread");
        match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{adapter:?}/{store:?} server refused to start: {e}"),
            Err(e) => panic!("{adapter:?}/{store:?} server did not start: {e}"),
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(20))
            // actix-web closes a keep-alive connection idle for 5 s; a pooled
            // connection older than that may already be half closed, and reusing it
            // fails with IncompleteMessage (seen after a slow venv build).
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .expect("http client");
        Self {
            base: format!("http://{addr}"),
            client,
            stop: Some(stop_tx),
            redis_prefix,
            clean_shared,
            database_url,
            pg_schema,
            _db: db,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The client, for requests `send` cannot express.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// A request to `path` on this server.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    /// `POST path`.
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.request(Method::DELETE, path)
    }

    /// Sends a request and reads the whole response. Asserts what holds for
    /// every response of the contract: no 5xx other than 503, and no body that
    /// echoes a token or password the request carried.
    pub async fn send(&self, req: RequestBuilder) -> Resp {
        self.try_send(req).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`TestServer::send`], with "no HTTP response at all" as an error
    /// naming the request instead of a panic.
    pub async fn try_send(&self, req: RequestBuilder) -> Result<Resp, String> {
        let req = req.build().expect("request");
        let what = format!("{} {}", req.method(), req.url().path());
        let body_len = req.body().and_then(|b| b.as_bytes()).map_or(0, <[u8]>::len);
        let mut secrets: Vec<String> = Vec::new();
        for v in req.headers().get_all(reqwest::header::AUTHORIZATION) {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            let token = v
                .split_once(' ')
                .map_or(v.as_str(), |(_, t)| t)
                .trim()
                .to_owned();
            secrets.push(token);
        }
        // The refresh-token cookie is as secret as a bearer token.
        for v in req.headers().get_all(reqwest::header::COOKIE) {
            for pair in String::from_utf8_lossy(v.as_bytes()).split(';') {
                if let Some((_, value)) = pair.split_once('=') {
                    secrets.push(value.trim().to_owned());
                }
            }
        }
        if let Some(v) = req
            .body()
            .and_then(|b| b.as_bytes())
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        {
            collect_secrets(&v, &mut secrets);
        }
        secrets.retain(|s| s.len() >= 8);
        let started = Instant::now();
        let resp =
            self.client.execute(req).await.map_err(|e| {
                format!("{what} (body of {body_len} bytes): no HTTP response: {e:?}")
            })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("{what}: {status} with an unreadable body: {e:?}"))?
            .to_vec();
        let text = String::from_utf8_lossy(&body).into_owned();
        let r = Resp {
            what,
            status,
            headers,
            body,
            text,
            elapsed: started.elapsed(),
        };
        assert!(
            status < 500 || status == 503,
            "{}: server error {status}: {}",
            r.what,
            r.text
        );
        for s in &secrets {
            assert!(
                !r.text.contains(s.as_str()),
                "{}: the response body echoes a secret the request sent: {}",
                r.what,
                r.text
            );
        }
        Ok(r)
    }

    /// `POST /signup` → the new user's id (asserts 201 `{"id","email"}`).
    pub async fn signup(&self, email: &str, password: &str) -> String {
        let r = self
            .send(
                self.post("/signup")
                    .json(&json!({ "email": email, "password": password })),
            )
            .await;
        r.assert_status(201);
        r.assert_json_type();
        let v = r.json();
        assert_eq!(
            v["email"].as_str().map(str::to_lowercase),
            Some(email.to_lowercase()),
            "signup body: {}",
            r.text
        );
        id_string(&v["id"]).unwrap_or_else(|| panic!("signup body without id: {}", r.text))
    }

    /// The Redis key prefix of this server, when it uses the shared Redis or
    /// the cluster:
    /// a second server started with the same `REISSUE_REDIS_PREFIX` shares
    /// its sessions, as instances behind one proxy do.
    pub fn redis_prefix(&self) -> Option<&str> {
        self.redis_prefix.as_deref()
    }

    /// `POST /auth/login` with extra headers, unchecked.
    pub async fn login_with(&self, email: &str, password: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self
            .post("/auth/login")
            .json(&json!({ "email": email, "password": password }));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// `POST /auth/login`, unchecked.
    pub async fn login_raw(&self, email: &str, password: &str) -> Resp {
        self.login_with(email, password, &[]).await
    }

    /// `POST /auth/login` → tokens (asserts a 200 token response).
    pub async fn login(&self, email: &str, password: &str) -> Tokens {
        self.login_raw(email, password).await.tokens()
    }

    /// Signs a fresh user up and logs in once.
    pub async fn user(&self) -> User {
        let email = format!("user{}@example.com", unique());
        self.user_named(&email).await
    }

    /// Signs `email` up, has the admin CLI vouch for it (`reissue-admin
    /// users vouch`, run in this process on the server's database), and
    /// logs in once: with its address in `REISSUE_ADMIN_EMAILS`, an admin.
    pub async fn vouched_user_named(&self, email: &str) -> User {
        let id = self.signup(email, PASSWORD).await;
        let cli = <reissue_admin::Cli as clap::Parser>::try_parse_from([
            "reissue-admin",
            "--database-url",
            &self.database_url,
            "users",
            "vouch",
            email,
        ])
        .expect("the admin CLI's arguments");
        cli.run(&mut Vec::new()).await.expect("users vouch");
        let tokens = self.login(email, PASSWORD).await;
        User {
            id,
            email: email.to_owned(),
            tokens,
        }
    }

    /// Signs `email` up and logs in once.
    pub async fn user_named(&self, email: &str) -> User {
        let id = self.signup(email, PASSWORD).await;
        let tokens = self.login(email, PASSWORD).await;
        User {
            id,
            email: email.to_owned(),
            tokens,
        }
    }

    /// `POST /auth/reissue` with `Authorization: Bearer <refresh>`.
    pub async fn reissue(&self, refresh: &str) -> Resp {
        self.send(self.post("/auth/reissue").bearer_auth(refresh))
            .await
    }

    /// `POST /auth/reissue` with extra headers.
    pub async fn reissue_with(&self, refresh: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.post("/auth/reissue").bearer_auth(refresh);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// `POST /auth/reissue` with `{"refresh_token": ...}`.
    pub async fn reissue_json(&self, refresh: &str) -> Resp {
        self.send(
            self.post("/auth/reissue")
                .json(&json!({ "refresh_token": refresh })),
        )
        .await
    }

    /// `GET path` with `Authorization: Bearer <token>`.
    pub async fn get_auth(&self, path: &str, token: &str) -> Resp {
        self.send(self.get(path).bearer_auth(token)).await
    }

    /// `POST path` with `Authorization: Bearer <token>` and no body.
    pub async fn post_auth(&self, path: &str, token: &str) -> Resp {
        self.send(self.post(path).bearer_auth(token)).await
    }

    /// `GET /me` with an access token.
    pub async fn me(&self, access: &str) -> Resp {
        self.get_auth("/me", access).await
    }

    /// `GET /me` with a raw `Authorization` value.
    pub async fn me_with_authorization(&self, value: &[u8]) -> Resp {
        let v = reqwest::header::HeaderValue::from_bytes(value).expect("header value");
        self.send(self.get("/me").header(reqwest::header::AUTHORIZATION, v))
            .await
    }

    /// `GET /auth/sessions` → the `sessions` array (asserts 200).
    pub async fn sessions(&self, access: &str) -> Vec<Value> {
        let r = self.get_auth("/auth/sessions", access).await;
        r.assert_status(200);
        r.assert_json_type();
        r.json()["sessions"]
            .as_array()
            .unwrap_or_else(|| panic!("GET /auth/sessions: no sessions array: {}", r.text))
            .clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some((base, schema)) = &self.pg_schema {
            // Best effort: a leftover schema is harmless.
            let _ = psql(base, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
        if let (Some(prefix), true) = (&self.redis_prefix, self.clean_shared) {
            // Best effort: keep the shared Redis clean.
            let script = "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) n = n + 1 end return n";
            let _ = Command::new("redis-cli")
                .args(["-p", "6379", "EVAL", script, "0", &format!("{prefix}*")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A fresh schema in the test database: (a URL whose `search_path` is it,
/// (the database's URL, the schema's name)).
fn postgres_schema() -> (String, (String, String)) {
    let base = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("sqlx_app_{}_{}_{}", std::process::id(), unique(), now());
    psql(&base, &format!("CREATE SCHEMA {schema}"))
        .unwrap_or_else(|e| panic!("PostgreSQL at {base} is needed by the sqlx-app rows: {e}"));
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    (url, (base, schema))
}

/// Runs one SQL statement with `psql`.
fn psql(url: &str, sql: &str) -> Result<(), String> {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn collect_secrets(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("password" | "refresh_token" | "access_token" | "token", Value::String(s)) => {
                        out.push(s.clone())
                    }
                    _ => collect_secrets(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secrets(v, out)),
        _ => {}
    }
}

/// An id from JSON, whether a string or a number.
pub fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A signed-up, logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    /// The id `/signup` returned.
    pub id: String,
    /// The email.
    pub email: String,
    /// The tokens of its first login.
    pub tokens: Tokens,
}

/// A token response.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
    /// The whole body.
    pub body: Value,
}

impl Tokens {
    /// The verified claims of the access token.
    pub fn access_claims(&self) -> Value {
        verify(&self.access)
    }

    /// The session id of the access token.
    pub fn sid(&self) -> String {
        self.access_claims()["sid"]
            .as_str()
            .expect("sid claim")
            .to_owned()
    }
}

/// A whole response.
#[derive(Debug)]
pub struct Resp {
    /// `METHOD /path`, for messages.
    pub what: String,
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body bytes.
    pub body: Vec<u8>,
    /// The body as text (lossy).
    pub text: String,
    /// How long the request took.
    pub elapsed: Duration,
}

const REALM: &str = "Bearer realm=\"reissue\"";

impl Resp {
    /// The body as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {:?}", self.what, self.text))
    }

    /// The only value of a header, as text.
    #[track_caller]
    pub fn header(&self, name: &str) -> Option<String> {
        let mut all = self.headers.get_all(name).iter();
        let first = all.next()?;
        assert!(
            all.next().is_none(),
            "{}: more than one {name} header: {:?}",
            self.what,
            self.headers
        );
        Some(String::from_utf8_lossy(first.as_bytes()).into_owned())
    }

    /// Asserts the status.
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "{}: expected {status}, got {} {}",
            self.what, self.status, self.text
        );
        self
    }

    /// Asserts `Content-Type: application/json`.
    #[track_caller]
    pub fn assert_json_type(&self) -> &Self {
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json"),
            "{}: Content-Type is {ct:?}, expected application/json",
            self.what
        );
        self
    }

    /// Asserts an error response of the contract: status, JSON content type,
    /// `{"error": code, "error_description": "<non-empty>"}`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(
            (self.status, self.json()["error"].as_str()),
            (status, Some(code)),
            "{}: expected {status} {code}, got {} {}",
            self.what,
            self.status,
            self.text
        );
        self.assert_json_type();
        let v = self.json();
        assert!(
            v["error_description"]
                .as_str()
                .is_some_and(|d| !d.trim().is_empty()),
            "{}: no error_description: {}",
            self.what,
            self.text
        );
        self
    }

    /// Asserts the `WWW-Authenticate` header (or its absence).
    #[track_caller]
    pub fn assert_www(&self, expected: Option<&str>) -> &Self {
        assert_eq!(
            self.header("www-authenticate").as_deref(),
            expected,
            "{}: WWW-Authenticate (status {}, body {})",
            self.what,
            self.status,
            self.text
        );
        self
    }

    /// Asserts no `WWW-Authenticate` and no `Retry-After`.
    #[track_caller]
    fn assert_plain(&self) -> &Self {
        self.assert_www(None);
        assert_eq!(
            self.header("retry-after"),
            None,
            "{}: unexpected Retry-After",
            self.what
        );
        self
    }

    /// Asserts a `Retry-After` of whole seconds in `1..=max`.
    #[track_caller]
    pub fn assert_retry_after(&self, max: u64) -> u64 {
        let v = self.header("retry-after").unwrap_or_else(|| {
            panic!(
                "{}: no Retry-After ({} {})",
                self.what, self.status, self.text
            )
        });
        let secs: u64 = v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{}: Retry-After {v:?} is not seconds", self.what));
        assert!(
            (1..=max).contains(&secs),
            "{}: Retry-After {secs} not in 1..={max}",
            self.what
        );
        secs
    }

    /// 401 `unauthorized` with the bare challenge.
    #[track_caller]
    pub fn assert_unauthorized(&self) -> &Self {
        self.assert_error(401, "unauthorized")
            .assert_www(Some(REALM))
    }

    /// 400 `invalid_request` about the `Authorization` header.
    #[track_caller]
    pub fn assert_bad_authorization(&self) -> &Self {
        self.assert_error(400, "invalid_request")
            .assert_www(Some("Bearer realm=\"reissue\", error=\"invalid_request\""))
    }

    /// 400 `invalid_request` about the body: no challenge.
    #[track_caller]
    pub fn assert_bad_body(&self) -> &Self {
        self.assert_error(400, "invalid_request").assert_plain()
    }

    /// 401 `invalid_token` with `error="invalid_token", error_description="..."`.
    #[track_caller]
    pub fn assert_invalid_token(&self) -> &Self {
        self.assert_error(401, "invalid_token");
        let www = self.header("www-authenticate").unwrap_or_default();
        let prefix = "Bearer realm=\"reissue\", error=\"invalid_token\", error_description=\"";
        let ok = www
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix('"'))
            .is_some_and(|d| !d.is_empty() && !d.contains('"') && !d.contains('\\'));
        assert!(
            ok,
            "{}: WWW-Authenticate {www:?}, expected {prefix}...\"",
            self.what
        );
        self
    }

    /// 403 `insufficient_scope` with its challenge.
    #[track_caller]
    pub fn assert_insufficient_scope(&self) -> &Self {
        self.assert_error(403, "insufficient_scope")
            .assert_www(Some(
                "Bearer realm=\"reissue\", error=\"insufficient_scope\"",
            ))
    }

    /// 401 `invalid_credentials`, no challenge.
    #[track_caller]
    pub fn assert_invalid_credentials(&self) -> &Self {
        self.assert_error(401, "invalid_credentials").assert_plain()
    }

    /// 429 `too_many_attempts` with `Retry-After`.
    #[track_caller]
    pub fn assert_too_many_attempts(&self, lockout: u64) -> &Self {
        self.assert_error(429, "too_many_attempts").assert_www(None);
        self.assert_retry_after(lockout);
        self
    }

    /// 403 `access_denied`, no challenge.
    #[track_caller]
    pub fn assert_access_denied(&self) -> &Self {
        self.assert_error(403, "access_denied").assert_plain()
    }

    /// 503 `temporarily_unavailable` with `Retry-After`.
    #[track_caller]
    pub fn assert_unavailable(&self) -> &Self {
        self.assert_error(503, "temporarily_unavailable")
            .assert_www(None);
        self.assert_retry_after(3600);
        self
    }

    /// 404 `not_found`.
    #[track_caller]
    pub fn assert_not_found(&self) -> &Self {
        self.assert_error(404, "not_found")
    }

    /// 204 with an empty body.
    #[track_caller]
    pub fn assert_no_content(&self) -> &Self {
        self.assert_status(204);
        assert!(
            self.body.is_empty(),
            "{}: 204 with a body: {:?}",
            self.what,
            self.text
        );
        self
    }

    /// Asserts a 200 token response of the contract and returns its tokens.
    #[track_caller]
    pub fn tokens(&self) -> Tokens {
        self.assert_status(200).assert_json_type();
        assert_eq!(
            self.header("cache-control")
                .map(|c| c.to_ascii_lowercase().contains("no-store")),
            Some(true),
            "{}: token response without Cache-Control: no-store",
            self.what
        );
        let v = self.json();
        let s = |k: &str| {
            v[k].as_str()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| {
                    panic!("{}: token response without {k}: {}", self.what, self.text)
                })
                .to_owned()
        };
        let access = s("access_token");
        let refresh = s("refresh_token");
        // `DPoP` exactly for a session bound to a DPoP key (its `cnf`).
        let bound = payload_of(&access).get("cnf").is_some();
        assert_eq!(
            v["token_type"],
            json!(if bound { "DPoP" } else { "Bearer" }),
            "{}: token_type: {}",
            self.what,
            self.text
        );
        assert!(
            v["expires_in"].as_u64().is_some_and(|n| n > 0),
            "{}: expires_in: {}",
            self.what,
            self.text
        );
        assert!(
            v["refresh_expires_in"].as_u64().is_some_and(|n| n > 0),
            "{}: refresh_expires_in: {}",
            self.what,
            self.text
        );
        assert_ne!(
            access, refresh,
            "{}: access and refresh tokens are the same",
            self.what
        );
        Tokens {
            access,
            refresh,
            body: v,
        }
    }
}

/// Verifies an access token with the test secret and the default issuer and
/// audience, and returns its claims.
#[track_caller]
pub fn verify(token: &str) -> Value {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(TEST_SECRET.as_bytes()), &v)
        .unwrap_or_else(|e| panic!("token does not verify with the test secret: {e}"))
        .claims
}

/// The JOSE header of a token, as JSON.
#[track_caller]
pub fn header_of(token: &str) -> Value {
    part(token, 0)
}

/// The payload of a token, as JSON, unverified.
#[track_caller]
pub fn payload_of(token: &str) -> Value {
    part(token, 1)
}

#[track_caller]
fn part(token: &str, i: usize) -> Value {
    let p = token.split('.').nth(i).expect("JWT part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).expect("base64url part")).expect("JSON part")
}

/// base64url of JSON, no padding.
pub fn b64_json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

/// A JWS with exactly this header and payload, signed with `secret` by the
/// header's HMAC `alg`.
pub fn forge(header: &Value, payload: &Value, secret: &str) -> String {
    let alg = match header["alg"].as_str() {
        Some("HS384") => Algorithm::HS384,
        Some("HS512") => Algorithm::HS512,
        _ => Algorithm::HS256,
    };
    let input = format!("{}.{}", b64_json(header), b64_json(payload));
    let sig = jsonwebtoken::crypto::sign(
        input.as_bytes(),
        &EncodingKey::from_secret(secret.as_bytes()),
        alg,
    )
    .expect("sign");
    format!("{input}.{sig}")
}

/// The header of a real access token of the example apps.
pub fn access_header() -> Value {
    json!({ "alg": "HS256", "typ": "at+jwt", "kid": KID })
}

/// `on_both_adapters!(a, b)` emits `mod axum` and `mod actix` with one test
/// per scenario, each app on the Redis store: for the test binaries that
/// drive an outside tool (PyJWT, schemathesis), where each app once is
/// enough and every store cell would only repeat the tool's run.
#[macro_export]
macro_rules! on_both_adapters {
    ($($s:ident),* $(,)?) => {
        mod axum {
            use reissue_conformance::{run, Adapter, Store, Target};
            const TARGET: Target = Target { adapter: Adapter::Axum, store: Store::Redis };
            $( #[test] fn $s() { run(TARGET, super::$s); } )*
        }
        mod actix {
            use reissue_conformance::{run, Adapter, Store, Target};
            const TARGET: Target = Target { adapter: Adapter::Actix, store: Store::Redis };
            $( #[test] fn $s() { run(TARGET, super::$s); } )*
        }
    };
}

/// The Python that runs the outside tools: `$REISSUE_TEST_PYTHON` when set,
/// else the venv `<target dir>/python-venv` with `tests/python/requirements.txt`
/// installed, which the first test to ask builds (`python3 -m venv`, then
/// `pip install`), so that `cargo test --workspace` needs no set-up by hand.
/// A file lock keeps parallel test binaries from building it twice at once,
/// and a copy of the requirements inside the venv tells when it must be
/// brought up to date.
pub fn python() -> String {
    if let Ok(python) = std::env::var("REISSUE_TEST_PYTHON") {
        return python;
    }
    static VENV: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VENV.get_or_init(pinned_venv).clone()
}

fn pinned_venv() -> String {
    use std::path::PathBuf;
    let requirements = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/requirements.txt");
    let wanted = std::fs::read(&requirements).expect("tests/python/requirements.txt");
    // A test binary is <target dir>/<profile>/deps/<name>-<hash>.
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the target directory")
        .to_path_buf();
    let venv = target.join("python-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("reissue-requirements.txt");

    let lock =
        std::fs::File::create(target.join("python-venv.lock")).expect("the venv's lock file");
    lock.lock().expect("lock the venv");
    if std::fs::read(&stamp).ok().as_deref() != Some(&wanted[..]) || !python.exists() {
        eprintln!(
            "building {} from {} (once)",
            venv.display(),
            requirements.display()
        );
        let run = |cmd: &mut Command, what: &str| {
            let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(
                out.status.success(),
                "{what} failed (needs python3 with its venv module: apt install python3-venv; \
                 or set REISSUE_TEST_PYTHON to a Python with tests/python/requirements.txt): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        if !python.exists() {
            run(
                Command::new("python3").arg("-m").arg("venv").arg(&venv),
                "python3 -m venv",
            );
        }
        run(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(&requirements),
            "pip install -r tests/python/requirements.txt",
        );
        std::fs::write(&stamp, &wanted).expect("write the venv's stamp");
    }
    drop(lock);
    python.to_string_lossy().into_owned()
}
