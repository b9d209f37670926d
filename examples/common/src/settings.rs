//! The example apps' configuration (CONTRACT.md, "Configuration, from the
//! environment"): every variable is also a flag (`--help` lists them), read
//! with clap. Values are taken as text and checked here, so that a refusal
//! is one line naming the variable, whichever way the value came.
//!
//! The settings the admin CLI shares with the apps (the databases, the key
//! prefix, the two lifetimes the store keeps revocations for) are
//! [`reissue_admin::StoreArgs`], flattened in and connected by the same
//! functions as the CLI's.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser};
use metrics_exporter_prometheus::PrometheusBuilder;
use reissue_admin::{StoreArgs, seconds};
use reissue_core::policy::{CountryLookup, CountryRule, GeoIp, PolicySet, TrustedProxies};
use reissue_core::store::{MemoryStore, RefreshStore};
use reissue_core::{
    Algorithm, Config, CookieTransport, Key, KeySet, Origin, Reissue, RevocationMode,
};

use crate::{AppState, STORE_LATENCY_BUCKETS};

/// Why the app refuses to start: one line naming the variable.
#[derive(Debug)]
pub struct StartError(pub String);

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

impl From<reissue_admin::Error> for StartError {
    fn from(e: reissue_admin::Error) -> Self {
        Self(e.to_string())
    }
}

fn fail<T>(var: &str, why: impl fmt::Display) -> Result<T, StartError> {
    Err(StartError(format!("{var}: {why}")))
}

/// Key material (a secret, a key file's bytes), which `Debug` (and so a
/// logged `Settings`) never shows.
#[derive(Clone)]
struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Reads a key file; the refusal names the variable and the path, never
/// the content.
fn read_key(var: &str, path: &str) -> Result<Vec<u8>, StartError> {
    std::fs::read(path).or_else(|e| fail(var, format!("cannot read `{path}`: {e}")))
}

/// A value as given, trimmed; `None` when blank, which counts as unset.
fn given(raw: &Option<String>) -> Option<String> {
    raw.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The flags and variables of CONTRACT.md's configuration table. Every
/// value is text here; [`Settings`] checks it.
#[derive(Debug, Clone, Parser)]
#[command(
    about = "reissue's example app: the HTTP contract of CONTRACT.md on SQLite or Postgres, \
             with Redis or an in-process store",
    long_about = None,
    after_help = "Every option is also read from the environment variable shown; a flag \
                  wins over its variable, and a blank variable counts as unset."
)]
struct AppArgs {
    /// Listen address; prints `listening on http://<addr>` once ready
    #[arg(
        long,
        env = "REISSUE_ADDR",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:3000"
    )]
    addr: Option<String>,

    #[command(flatten)]
    store: StoreArgs,

    /// HS256 secret, at least 32 bytes; unset: a random one per start.
    /// Prefer the variable: a flag shows in `ps`
    #[arg(
        long,
        env = "REISSUE_JWT_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    jwt_secret: Option<String>,

    /// PEM private key (Ed25519, P-256, RSA >= 2048) to sign with instead of
    /// the secret; its public key is served at /auth/jwks.json
    #[arg(long, env = "REISSUE_JWT_KEY", value_name = "PATH")]
    jwt_key: Option<String>,

    /// Comma-separated PEM keys still accepted but no longer signing
    #[arg(long, env = "REISSUE_JWT_VERIFY_KEYS", value_name = "PATHS")]
    jwt_verify_keys: Option<String>,

    /// Token issuer (`iss`)
    #[arg(long, env = "REISSUE_ISSUER", default_value = "reissue-example")]
    issuer: Option<String>,

    /// Token audience (`aud`)
    #[arg(long, env = "REISSUE_AUDIENCE", default_value = "reissue-example")]
    audience: Option<String>,

    /// Refresh idle lifetime, seconds
    #[arg(
        long,
        env = "REISSUE_REFRESH_TTL",
        value_name = "SECONDS",
        default_value = "1209600"
    )]
    refresh_ttl: Option<String>,

    /// Grace window for a spent refresh token, seconds (0: strict)
    #[arg(
        long,
        env = "REISSUE_REUSE_GRACE",
        value_name = "SECONDS",
        default_value = "10"
    )]
    reuse_grace: Option<String>,

    /// How access tokens of ended sessions are refused
    #[arg(
        long,
        env = "REISSUE_REVOCATION",
        value_name = "stateless|instant|strict",
        default_value = "instant"
    )]
    revocation: Option<String>,

    /// 1: the same as `--revocation strict`
    #[arg(
        long,
        env = "REISSUE_STRICT_REVOCATION",
        value_name = "0|1",
        default_value = "0"
    )]
    strict_revocation: Option<String>,

    /// Failed logins per account and client network before 429
    #[arg(
        long,
        env = "REISSUE_LOGIN_MAX_FAILURES",
        value_name = "N",
        default_value = "5"
    )]
    login_max_failures: Option<String>,

    /// The window those failures are counted in, seconds
    #[arg(
        long,
        env = "REISSUE_LOGIN_LOCKOUT",
        value_name = "SECONDS",
        default_value = "300"
    )]
    login_lockout: Option<String>,

    /// 0 turns the refresh-token cookie transport off
    #[arg(long, env = "REISSUE_COOKIES", value_name = "0|1", default_value = "1")]
    cookies: Option<String>,

    /// Comma-separated origins allowed to use the cookie transport; empty:
    /// the request's own origin
    #[arg(long, env = "REISSUE_ALLOWED_ORIGINS", value_name = "ORIGINS")]
    allowed_origins: Option<String>,

    /// Comma-separated emails whose users get role `admin` at signup
    #[arg(long, env = "REISSUE_ADMIN_EMAILS", value_name = "EMAILS")]
    admin_emails: Option<String>,

    /// Comma-separated CIDRs of proxies whose X-Forwarded-For is believed
    #[arg(long, env = "REISSUE_TRUSTED_PROXIES", value_name = "CIDRS")]
    trusted_proxies: Option<String>,

    /// MaxMind country database (.mmdb); SIGHUP reads it again
    #[arg(long, env = "REISSUE_GEOIP_DB", value_name = "PATH")]
    geoip_db: Option<String>,

    /// Comma-separated ISO country codes allowed to log in (needs
    /// --geoip-db); empty: all
    #[arg(long, env = "REISSUE_ALLOWED_COUNTRIES", value_name = "CODES")]
    allowed_countries: Option<String>,
}

/// The example apps' configuration (CONTRACT.md, "Configuration, from the environment").
#[derive(Debug, Clone)]
pub struct Settings {
    addr: SocketAddr,
    store: StoreArgs,
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
    /// Reads the command line and the process environment. `--help` prints
    /// every flag with its variable and default, and exits; an unknown flag
    /// is a usage error (exit status 2).
    pub fn from_env() -> Result<Self, StartError> {
        // The usage line names the binary as clap finds it in `argv[0]`.
        let command = AppArgs::command();
        let matches = command.get_matches();
        let args = AppArgs::from_arg_matches(&matches).map_err(|e| first_line(&e))?;
        Self::from_args(args)
    }

    /// Reads a command line (`args[0]` is the program name), the process
    /// environment filling in what it does not give.
    pub fn try_from_args<I, T>(args: I) -> Result<Self, StartError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args = AppArgs::try_parse_from(args).map_err(|e| first_line(&e))?;
        Self::from_args(args)
    }

    /// Reads variables through `var` only, never the process environment
    /// (tests pass a map): each variable becomes its flag.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, StartError> {
        let command = AppArgs::command();
        let mut argv = vec![OsString::from("app")];
        for arg in command.get_arguments() {
            let (Some(env), Some(long)) = (arg.get_env().and_then(|e| e.to_str()), arg.get_long())
            else {
                continue;
            };
            if let Some(value) = var(env) {
                argv.push(format!("--{long}={value}").into());
            }
        }
        let matches = command
            .mut_args(|a| a.env(None))
            .try_get_matches_from(argv)
            .map_err(|e| first_line(&e))?;
        let args = AppArgs::from_arg_matches(&matches).map_err(|e| first_line(&e))?;
        Self::from_args(args)
    }

    fn from_args(a: AppArgs) -> Result<Self, StartError> {
        let addr = match given(&a.addr) {
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
            Some(v) => match v.parse() {
                Ok(a) => a,
                Err(_) => return fail("REISSUE_ADDR", format!("expected host:port, got `{v}`")),
            },
        };
        // `given` treats a blank value as unset, which for the secret would
        // silently mean a random key: a deployment whose secret went missing
        // would log everyone out at each start instead of failing.
        if a.jwt_secret.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return fail(
                "REISSUE_JWT_SECRET",
                "is set but empty; set a secret of at least 32 bytes, or unset it for a random key",
            );
        }
        let secret = match given(&a.jwt_secret) {
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
        let signing_pem = match given(&a.jwt_key) {
            None => None,
            Some(path) => {
                let pem = read_key("REISSUE_JWT_KEY", &path)?;
                Key::from_private_pem_detected(&pem)
                    .or_else(|e| fail("REISSUE_JWT_KEY", format!("`{path}`: {e}")))?;
                Some(Secret(pem))
            }
        };
        let mut verify_pems = Vec::new();
        for path in given(&a.jwt_verify_keys)
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
        let trusted = match given(&a.trusted_proxies) {
            None => TrustedProxies::default(),
            Some(v) => TrustedProxies::parse(&v).or_else(|e| fail("REISSUE_TRUSTED_PROXIES", e))?,
        };
        let max_failures = match given(&a.login_max_failures) {
            None => 5,
            Some(v) => v.parse::<u32>().or_else(|_| {
                fail(
                    "REISSUE_LOGIN_MAX_FAILURES",
                    format!("expected a number, got `{v}`"),
                )
            })?,
        };
        let mut revocation = match given(&a.revocation) {
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
        match given(&a.strict_revocation).as_deref() {
            None | Some("0") | Some("false") => {}
            Some("1") | Some("true") => revocation = RevocationMode::Strict,
            Some(v) => {
                return fail(
                    "REISSUE_STRICT_REVOCATION",
                    format!("expected 0 or 1, got `{v}`"),
                );
            }
        }
        let cookies = match given(&a.cookies).as_deref() {
            None | Some("1") | Some("true") => {
                let origins = given(&a.allowed_origins).unwrap_or_default();
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
        let secs = |var, raw: &Option<String>, default| {
            seconds(var, raw.as_deref().unwrap_or(""), default).map_err(StartError::from)
        };
        let config = Config::new(
            given(&a.issuer).unwrap_or_else(|| "reissue-example".into()),
            given(&a.audience).unwrap_or_else(|| "reissue-example".into()),
        )
        .access_ttl(a.store.access_ttl()?)
        .refresh_ttl(secs("REISSUE_REFRESH_TTL", &a.refresh_ttl, 1_209_600)?)
        .session_max_age(a.store.session_max_age()?)
        .reuse_grace(secs("REISSUE_REUSE_GRACE", &a.reuse_grace, 10)?)
        .revocation(revocation)
        .login_lockout(
            max_failures,
            secs("REISSUE_LOGIN_LOCKOUT", &a.login_lockout, 300)?,
        )
        .trusted_proxies(trusted)
        .cookie_transport(cookies);
        let allowed_countries = match given(&a.allowed_countries) {
            None => None,
            Some(v) => Some(
                CountryRule::parse_allow(&v).or_else(|e| fail("REISSUE_ALLOWED_COUNTRIES", e))?,
            ),
        };
        let geoip_db = given(&a.geoip_db);
        if allowed_countries.is_some() && geoip_db.is_none() {
            return fail(
                "REISSUE_ALLOWED_COUNTRIES",
                "needs REISSUE_GEOIP_DB to know where addresses are",
            );
        }
        Ok(Self {
            addr,
            store: a.store,
            secret,
            signing_pem,
            verify_pems,
            config,
            admin_emails: given(&a.admin_emails)
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
        let users = self.store.connect_users().await?;
        let store: Arc<dyn RefreshStore> = match self.store.connect_redis().await? {
            Some(redis) => Arc::new(redis),
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
        let openapi_json = crate::openapi::document(&reissue)
            .to_json()
            .or_else(|e| fail("openapi", e))?
            .into();
        Ok(AppState {
            reissue,
            users,
            admin_emails: Arc::new(self.admin_emails),
            geoip,
            metrics,
            openapi_json,
        })
    }
}

/// A clap error as one line: its first, without clap's `error: `.
fn first_line(e: &clap::Error) -> StartError {
    let text = e.to_string();
    let line = text.lines().next().unwrap_or_default();
    StartError(line.strip_prefix("error: ").unwrap_or(line).to_owned())
}
