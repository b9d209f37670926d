//! What reissue's two example apps share, so that they differ only in
//! framework glue: the configuration of CONTRACT.md read from the environment,
//! the wiring of a [`Reissue`] over the user database, and the app's own
//! endpoints (`/health`, `/signup`, `/me`, `/admin/users/{id}/logout`) as
//! framework-neutral functions returning a [`Reply`], and `GET /openapi.json`
//! describing them all.
#![forbid(unsafe_code)]

mod openapi;

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use reissue_core::policy::{CountryLookup, CountryRule, GeoIp, PolicySet, TrustedProxies};
use reissue_core::store::{MemoryStore, RedisStore, RefreshStore};
use reissue_core::{
    Algorithm, Config, CookieTransport, HttpRequest, Identity, Key, KeySet, Origin, Reissue, Reply,
    RevocationMode, UserClaims, json_body,
};
use reissue_diesel::{UserError, UserStore};
use serde::Deserialize;

/// Histogram buckets of `reissue_store_duration_seconds`: a local Redis
/// answers in well under a millisecond, a troubled one in seconds.
const STORE_LATENCY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The role that may force other users out.
pub const ADMIN_ROLE: &str = "admin";

/// Why the app refuses to start: one line naming the variable.
#[derive(Debug)]
pub struct StartError(pub String);

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

fn fail<T>(var: &str, why: impl fmt::Display) -> Result<T, StartError> {
    Err(StartError(format!("{var}: {why}")))
}

/// Reads a key file; the refusal names the variable and the path, never
/// the content.
/// Key material (a secret, a key file's bytes), which `Debug` (and so a
/// logged `Settings`) never shows.
#[derive(Clone)]
struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

fn read_key(var: &str, path: &str) -> Result<Vec<u8>, StartError> {
    std::fs::read(path).or_else(|e| fail(var, format!("cannot read `{path}`: {e}")))
}

/// The example apps' configuration (CONTRACT.md, "Configuration, from the environment").
#[derive(Debug, Clone)]
pub struct Settings {
    addr: SocketAddr,
    database_url: String,
    redis_url: Option<String>,
    redis_prefix: String,
    secret: Option<Secret>,
    /// `REISSUE_JWT_KEY`'s PEM, checked at read time.
    signing_pem: Option<Secret>,
    /// `REISSUE_JWT_VERIFY_KEYS`' PEMs, checked at read time.
    verify_pems: Vec<Secret>,
    config: Config,
    admin_emails: HashSet<String>,
    geoip_db: Option<String>,
    allowed_countries: Option<CountryRule>,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, StartError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `var` (tests pass a map instead of touching the
    /// process environment).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, StartError> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let secs = |name: &str, default: u64| -> Result<Duration, StartError> {
            match get(name) {
                None => Ok(Duration::from_secs(default)),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) => Ok(Duration::from_secs(n)),
                    Err(_) => fail(
                        name,
                        format!("expected a whole number of seconds, got `{v}`"),
                    ),
                },
            }
        };
        let addr = match get("REISSUE_ADDR") {
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
            Some(v) => match v.parse() {
                Ok(a) => a,
                Err(_) => return fail("REISSUE_ADDR", format!("expected host:port, got `{v}`")),
            },
        };
        // `get` treats a blank value as unset, which for the secret would
        // silently mean a random key: a deployment whose secret went missing
        // would log everyone out at each start instead of failing.
        if var("REISSUE_JWT_SECRET").is_some_and(|v| v.trim().is_empty()) {
            return fail(
                "REISSUE_JWT_SECRET",
                "is set but empty; set a secret of at least 32 bytes, or unset it for a random key",
            );
        }
        let secret = match get("REISSUE_JWT_SECRET") {
            Some(s) if s.len() < 32 => {
                return fail(
                    "REISSUE_JWT_SECRET",
                    format!("must be at least 32 bytes, got {}", s.len()),
                );
            }
            other => other.map(|s| Secret(s.into_bytes())),
        };
        // Read and parsed here, so that a bad key refuses to start before
        // anything is opened; `build` parses the same bytes again.
        let signing_pem = match get("REISSUE_JWT_KEY") {
            None => None,
            Some(path) => {
                let pem = read_key("REISSUE_JWT_KEY", &path)?;
                Key::from_private_pem_detected(&pem)
                    .or_else(|e| fail("REISSUE_JWT_KEY", format!("`{path}`: {e}")))?;
                Some(Secret(pem))
            }
        };
        let mut verify_pems = Vec::new();
        for path in get("REISSUE_JWT_VERIFY_KEYS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let pem = read_key("REISSUE_JWT_VERIFY_KEYS", path)?;
            Key::from_pem_detected(&pem)
                .or_else(|e| fail("REISSUE_JWT_VERIFY_KEYS", format!("`{path}`: {e}")))?;
            verify_pems.push(Secret(pem));
        }
        let trusted = match get("REISSUE_TRUSTED_PROXIES") {
            None => TrustedProxies::default(),
            Some(v) => TrustedProxies::parse(&v).or_else(|e| fail("REISSUE_TRUSTED_PROXIES", e))?,
        };
        let max_failures = match get("REISSUE_LOGIN_MAX_FAILURES") {
            None => 5,
            Some(v) => v.parse::<u32>().or_else(|_| {
                fail(
                    "REISSUE_LOGIN_MAX_FAILURES",
                    format!("expected a number, got `{v}`"),
                )
            })?,
        };
        let mut revocation = match get("REISSUE_REVOCATION") {
            None => RevocationMode::Instant,
            Some(v) => RevocationMode::parse(&v).map_or_else(
                || {
                    fail(
                        "REISSUE_REVOCATION",
                        format!("expected stateless, instant or strict, got `{v}`"),
                    )
                },
                Ok,
            )?,
        };
        match get("REISSUE_STRICT_REVOCATION").as_deref() {
            None | Some("0") | Some("false") => {}
            Some("1") | Some("true") => revocation = RevocationMode::Strict,
            Some(v) => {
                return fail(
                    "REISSUE_STRICT_REVOCATION",
                    format!("expected 0 or 1, got `{v}`"),
                );
            }
        }
        let cookies = match get("REISSUE_COOKIES").as_deref() {
            None | Some("1") | Some("true") => {
                let origins = get("REISSUE_ALLOWED_ORIGINS").unwrap_or_default();
                let origins = origins
                    .split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(Origin::parse)
                    .collect::<Result<Vec<_>, _>>()
                    .or_else(|e| fail("REISSUE_ALLOWED_ORIGINS", e))?;
                CookieTransport::new().allowed_origins(origins)
            }
            Some("0") | Some("false") => CookieTransport::off(),
            Some(v) => return fail("REISSUE_COOKIES", format!("expected 0 or 1, got `{v}`")),
        };
        let config = Config::new(
            get("REISSUE_ISSUER").unwrap_or_else(|| "reissue-example".into()),
            get("REISSUE_AUDIENCE").unwrap_or_else(|| "reissue-example".into()),
        )
        .access_ttl(secs("REISSUE_ACCESS_TTL", 300)?)
        .refresh_ttl(secs("REISSUE_REFRESH_TTL", 1_209_600)?)
        .session_max_age(secs("REISSUE_SESSION_MAX_AGE", 2_592_000)?)
        .reuse_grace(secs("REISSUE_REUSE_GRACE", 10)?)
        .revocation(revocation)
        .login_lockout(max_failures, secs("REISSUE_LOGIN_LOCKOUT", 300)?)
        .trusted_proxies(trusted)
        .cookie_transport(cookies);
        let allowed_countries = match get("REISSUE_ALLOWED_COUNTRIES") {
            None => None,
            Some(v) => Some(
                CountryRule::parse_allow(&v).or_else(|e| fail("REISSUE_ALLOWED_COUNTRIES", e))?,
            ),
        };
        let geoip_db = get("REISSUE_GEOIP_DB");
        if allowed_countries.is_some() && geoip_db.is_none() {
            return fail(
                "REISSUE_ALLOWED_COUNTRIES",
                "needs REISSUE_GEOIP_DB to know where addresses are",
            );
        }
        Ok(Self {
            addr,
            database_url: get("DATABASE_URL")
                .unwrap_or_else(|| "sqlite://reissue-example.sqlite".into()),
            redis_url: get("REDIS_URL"),
            redis_prefix: get("REISSUE_REDIS_PREFIX").unwrap_or_else(|| "reissue:".into()),
            secret,
            signing_pem,
            verify_pems,
            config,
            admin_emails: get("REISSUE_ADMIN_EMAILS")
                .map(|v| {
                    v.split(',')
                        .map(|e| e.trim().to_lowercase())
                        .filter(|e| !e.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            geoip_db,
            allowed_countries,
        })
    }

    /// The listen address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The key set: `REISSUE_JWT_KEY` signing when set, else the HMAC secret
    /// (random when unset). With a key, a configured secret stays as a
    /// verification key, so that moving from the secret to a key logs no one
    /// out; `REISSUE_JWT_VERIFY_KEYS` are added as verification keys.
    fn keys(&self) -> Result<KeySet, StartError> {
        let hmac = |secret: &[u8]| {
            Key::hmac("hs256-1", Algorithm::HS256, secret)
                .or_else(|e| fail("REISSUE_JWT_SECRET", e))
        };
        let mut keys = match (&self.signing_pem, &self.secret) {
            (Some(pem), secret) => {
                let key = Key::from_private_pem_detected(&pem.0)
                    .or_else(|e| fail("REISSUE_JWT_KEY", e))?;
                let mut keys = KeySet::new(key).or_else(|e| fail("REISSUE_JWT_KEY", e))?;
                if let Some(secret) = secret {
                    keys = keys
                        .with_verification_key(hmac(&secret.0)?)
                        .or_else(|e| fail("REISSUE_JWT_SECRET", e))?;
                }
                keys
            }
            (None, Some(secret)) => {
                KeySet::new(hmac(&secret.0)?).or_else(|e| fail("REISSUE_JWT_SECRET", e))?
            }
            (None, None) => {
                tracing::warn!(
                    "REISSUE_JWT_SECRET is unset: a random key is used, tokens die with the process"
                );
                let bytes: [u8; 32] = rand::random();
                KeySet::new(hmac(&bytes)?).or_else(|e| fail("REISSUE_JWT_SECRET", e))?
            }
        };
        for pem in &self.verify_pems {
            let key =
                Key::from_pem_detected(&pem.0).or_else(|e| fail("REISSUE_JWT_VERIFY_KEYS", e))?;
            keys = keys
                .with_verification_key(key)
                .or_else(|e| fail("REISSUE_JWT_VERIFY_KEYS", e))?;
        }
        Ok(keys)
    }

    /// Opens the databases and builds the app's state.
    pub async fn build(self) -> Result<AppState, StartError> {
        let users = UserStore::connect(&self.database_url).or_else(|e| fail("DATABASE_URL", e))?;
        users
            .run_migrations()
            .await
            .or_else(|e| fail("DATABASE_URL", e))?;
        let store: Arc<dyn RefreshStore> = match &self.redis_url {
            Some(url) => Arc::new(
                RedisStore::builder(url.as_str())
                    .key_prefix(self.redis_prefix.as_str())
                    .connect()
                    .await
                    .or_else(|e| fail("REDIS_URL", e))?,
            ),
            None => {
                tracing::warn!(
                    "REDIS_URL is unset: sessions live in process memory and die with it"
                );
                Arc::new(MemoryStore::new())
            }
        };
        let keys = self.keys()?;
        let mut builder = Reissue::builder(self.config, keys, store, users.clone());
        let mut geoip = None;
        if let Some(path) = &self.geoip_db {
            let db = Arc::new(GeoIp::open(path).or_else(|e| fail("REISSUE_GEOIP_DB", e))?);
            builder = builder.countries(db.clone() as Arc<dyn CountryLookup>);
            geoip = Some(db);
        }
        if let Some(rule) = self.allowed_countries {
            builder = builder.policy(PolicySet::new().with(rule));
        }
        // This app's own recorder, not the process-wide one: each app (and
        // each test server in one process) counts only what it did.
        let recorder = PrometheusBuilder::new()
            .set_buckets(STORE_LATENCY_BUCKETS)
            .or_else(|e| fail("metrics", e))?
            .build_recorder();
        let metrics = recorder.handle();
        builder = builder.metrics(Arc::new(recorder));
        let reissue = builder.build().or_else(|e| fail("configuration", e))?;
        Ok(AppState {
            reissue,
            users,
            admin_emails: Arc::new(self.admin_emails),
            geoip,
            metrics,
        })
    }
}

/// Everything the handlers need. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Sessions and tokens.
    pub reissue: Reissue<UserStore>,
    /// The user database.
    pub users: UserStore,
    admin_emails: Arc<HashSet<String>>,
    geoip: Option<Arc<GeoIp>>,
    metrics: PrometheusHandle,
}

/// The signup body.
#[derive(Deserialize, utoipa::ToSchema)]
struct Signup {
    /// The account's email.
    #[schema(format = Email)]
    email: String,
    /// At least 8 characters.
    #[schema(format = Password)]
    password: String,
}

fn error(status: u16, code: &str, description: &str) -> Reply {
    Reply::json(
        status,
        &serde_json::json!({ "error": code, "error_description": description }),
    )
}

/// The demo page: one HTML file with its script and style inline.
const DEMO_PAGE: &str = include_str!("demo.html");

impl AppState {
    /// `GET /`: the demo page (sign up, log in with the cookie transport,
    /// `/me`, sessions, log out), the same bytes from both apps. It loads
    /// nothing from elsewhere, and its policy says so.
    pub fn demo_page() -> Reply {
        let mut reply = Reply::with_body(200, "text/html; charset=utf-8", DEMO_PAGE);
        reply.headers.extend([
            (
                "content-security-policy",
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
                 frame-ancestors 'none'"
                    .to_owned(),
            ),
            ("x-content-type-options", "nosniff".to_owned()),
            ("referrer-policy", "no-referrer".to_owned()),
            ("cache-control", "no-cache".to_owned()),
        ]);
        reply
    }

    /// Reads `REISSUE_GEOIP_DB` again (after geoipupdate replaced it). A
    /// file that does not open or validate is logged and the database in use
    /// stays: a bad update never stops country checks.
    pub fn reload_geoip(&self) {
        match &self.geoip {
            None => tracing::info!("SIGHUP: no REISSUE_GEOIP_DB to reload"),
            Some(db) => match db.reload() {
                Ok(()) => tracing::info!(
                    path = %db.path().display(),
                    build_epoch = db.build_epoch(),
                    "SIGHUP: GeoIP database reloaded"
                ),
                Err(e) => {
                    tracing::error!("SIGHUP: GeoIP database kept, the new file is refused: {e}")
                }
            },
        }
    }

    /// Listens for SIGHUP from now on and returns the task that answers each
    /// with [`AppState::reload_geoip`]; spawn it on the app's runtime. Called
    /// before the app says it is listening, so that a SIGHUP from then on
    /// reloads instead of ending the process (its default action).
    #[cfg(unix)]
    pub fn reload_on_sighup(
        &self,
    ) -> std::io::Result<impl std::future::Future<Output = ()> + 'static> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = signal(SignalKind::hangup())?;
        let state = self.clone();
        Ok(async move {
            while hangups.recv().await.is_some() {
                state.reload_geoip();
            }
        })
    }

    /// `GET /metrics`: this app's `reissue_*` counters and histograms in
    /// the Prometheus text format.
    pub fn metrics(&self) -> Reply {
        Reply::with_body(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            self.metrics.render(),
        )
    }

    /// Drains histogram samples into their buckets now and then, so that an
    /// app nobody scrapes does not pile them up; spawn it on the app's runtime.
    pub fn metrics_upkeep(&self) -> impl std::future::Future<Output = ()> + 'static {
        let handle = self.metrics.clone();
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                handle.run_upkeep();
            }
        }
    }

    /// `GET /health`.
    pub fn health() -> Reply {
        Reply::json(200, &openapi::Health { status: "ok" })
    }

    /// `POST /signup`: `{"email","password"}` → 201 `{"id","email"}`; 409
    /// `email_taken`; 400 `invalid_request`.
    pub async fn signup(&self, req: &impl HttpRequest, body: &[u8]) -> Reply {
        let Signup { email, password } = match json_body(req, body) {
            Ok(signup) => signup,
            Err(e) => return self.reissue.reply(&e),
        };
        let roles: &[&str] = if self.admin_emails.contains(&email.trim().to_lowercase()) {
            &[ADMIN_ROLE]
        } else {
            &[]
        };
        match self.users.create_user(&email, &password, roles).await {
            Ok(user) => Reply::json(
                201,
                &openapi::SignedUp {
                    id: user.id.to_string(),
                    email: user.email,
                },
            ),
            Err(UserError::EmailTaken) => {
                error(409, "email_taken", "an account with this email exists")
            }
            Err(e) => self.reissue.reply(&e.into()),
        }
    }

    /// `GET /me`: the caller as the access token says.
    pub fn me(identity: &Identity<UserClaims>) -> Reply {
        Reply::json(
            200,
            &openapi::Me {
                id: &identity.user_id,
                email: &identity.claims.email,
                roles: &identity.claims.roles,
                sid: identity.session_id.as_str(),
            },
        )
    }

    /// `POST /admin/users/{id}/logout`: forced logout of every session of a user.
    pub async fn admin_logout(&self, user_id: &str) -> Reply {
        match self.reissue.force_logout(user_id, "admin").await {
            Ok(_) => Reply::no_content(),
            Err(e) => self.reissue.reply(&e),
        }
    }
}
