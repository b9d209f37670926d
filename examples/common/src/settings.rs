//! The example apps' configuration (CONTRACT.md, "Configuration, from the
//! environment"): every variable is also a flag (`--help` lists them), read
//! with clap. Each value goes through one parser of [`crate::values`], so
//! that a default is written once (its `default_value`), a refusal once (its
//! parser), and a refusal is one line naming the variable, whichever way the
//! value came. A new setting is one field here and, where the library takes
//! it, one line of [`AppArgs::config`].
//!
//! The settings the admin CLI shares with the apps (the databases, the key
//! prefix, the two lifetimes the store keeps revocations for) are
//! [`reissue_admin::StoreArgs`], flattened in and connected by the same
//! functions as the CLI's.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};
use metrics_exporter_prometheus::PrometheusBuilder;
use reissue_admin::StoreArgs;
use reissue_core::policy::{CountryLookup, CountryRule, GeoIp, PolicySet, TrustedProxies};
use reissue_core::store::{MemoryStore, RefreshStore};
use reissue_core::{
    Algorithm, Config, CookieTransport, DpopMode, Key, KeySet, Origin, Reissue, RevocationMode,
};

use crate::values::{
    Secret, parse_addr, parse_count, parse_countries, parse_dpop, parse_emails, parse_jitter,
    parse_optional_origin, parse_optional_path, parse_optional_seconds, parse_optional_text,
    parse_origins, parse_paths, parse_proxies, parse_revocation, parse_seconds, parse_secret,
    parse_switch, parse_text, refusal, setting,
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

/// Reads a key file and checks it with `check`; the refusal names the
/// variable and the path, never the content.
fn read_key<E: fmt::Display>(
    var: &str,
    path: &Path,
    check: impl Fn(&[u8]) -> Result<Key, E>,
) -> Result<Secret, StartError> {
    let shown = path.display();
    let pem = std::fs::read(path).or_else(|e| fail(var, format!("cannot read `{shown}`: {e}")))?;
    check(&pem).or_else(|e| fail(var, format!("`{shown}`: {e}")))?;
    Ok(Secret(pem))
}

/// The flags and variables of CONTRACT.md's configuration table, each
/// parsed by its value parser. Settings that may be unset are written
/// `std::option::Option`, not `Option`: clap's derive would read the latter
/// as "a value if given", and a blank value, which counts as unset, must be
/// `None` too (so they take a hidden default of `""`); lists likewise
/// `std::vec::Vec`, which clap would read as a repeatable flag. A `bool`
/// takes a value (`0` or `1`), not clap's presence flag.
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
    #[arg(long, env = "REISSUE_ADDR", value_name = "HOST:PORT",
        default_value = "127.0.0.1:3000", value_parser = setting(parse_addr))]
    addr: SocketAddr,

    #[command(flatten)]
    store: StoreArgs,

    /// HS256 secret, at least 32 bytes; unset: a random one per start.
    /// Prefer the variable: a flag shows in `ps`
    // No default: set but blank is refused, unset is a random key.
    #[arg(long, env = "REISSUE_JWT_SECRET", value_name = "SECRET",
        hide_env_values = true, value_parser = setting(parse_secret))]
    jwt_secret: Option<Secret>,

    /// PEM private key (Ed25519, P-256, RSA >= 2048) to sign with instead of
    /// the secret; its public key is served at /auth/jwks.json
    #[arg(long, env = "REISSUE_JWT_KEY", value_name = "PATH",
        default_value = "", hide_default_value = true, value_parser = setting(parse_optional_path))]
    jwt_key: std::option::Option<PathBuf>,

    /// Comma-separated PEM keys still accepted but no longer signing
    #[arg(long, env = "REISSUE_JWT_VERIFY_KEYS", value_name = "PATHS",
        default_value = "", hide_default_value = true, value_parser = setting(parse_paths))]
    jwt_verify_keys: std::vec::Vec<PathBuf>,

    /// Token issuer (`iss`)
    #[arg(long, env = "REISSUE_ISSUER",
        default_value = "reissue-example", value_parser = setting(parse_text))]
    issuer: String,

    /// Token audience (`aud`)
    #[arg(long, env = "REISSUE_AUDIENCE",
        default_value = "reissue-example", value_parser = setting(parse_text))]
    audience: String,

    /// The access tokens' `client_id` (default: the audience)
    #[arg(long, env = "REISSUE_CLIENT_ID",
        default_value = "", hide_default_value = true, value_parser = setting(parse_optional_text))]
    client_id: std::option::Option<String>,

    /// How much access lifetimes vary at random, a fraction either way (0: none)
    #[arg(long, env = "REISSUE_ACCESS_TTL_JITTER", value_name = "FRACTION",
        default_value = "0.1", value_parser = setting(parse_jitter))]
    access_ttl_jitter: f64,

    /// Refresh idle lifetime, seconds
    #[arg(long, env = "REISSUE_REFRESH_TTL", value_name = "SECONDS",
        default_value = "1209600", value_parser = setting(parse_seconds))]
    refresh_ttl: Duration,

    /// A cap in seconds on replaying a spent refresh token (unset: until its
    /// successor is used; 0: no replays)
    #[arg(long, env = "REISSUE_REUSE_GRACE", value_name = "SECONDS",
        default_value = "", hide_default_value = true, value_parser = setting(parse_optional_seconds))]
    reuse_grace: std::option::Option<Duration>,

    /// How access tokens of ended sessions are refused
    #[arg(long, env = "REISSUE_REVOCATION", value_name = "stateless|instant|strict",
        default_value = "instant", value_parser = setting(parse_revocation))]
    revocation: RevocationMode,

    /// 1: the same as `--revocation strict`
    #[arg(long, env = "REISSUE_STRICT_REVOCATION", value_name = "0|1",
        default_value = "0", value_parser = setting(parse_switch), action = ArgAction::Set)]
    strict_revocation: bool,

    /// Failed logins per account and client network before 429
    #[arg(long, env = "REISSUE_LOGIN_MAX_FAILURES", value_name = "N",
        default_value = "5", value_parser = setting(parse_count))]
    login_max_failures: u32,

    /// The window those failures are counted in, seconds
    #[arg(long, env = "REISSUE_LOGIN_LOCKOUT", value_name = "SECONDS",
        default_value = "300", value_parser = setting(parse_seconds))]
    login_lockout: Duration,

    /// 0 turns the refresh-token cookie transport off
    #[arg(long, env = "REISSUE_COOKIES", value_name = "0|1",
        default_value = "1", value_parser = setting(parse_switch), action = ArgAction::Set)]
    cookies: bool,

    /// Comma-separated origins allowed to use the cookie transport; empty:
    /// the request's own origin
    #[arg(long, env = "REISSUE_ALLOWED_ORIGINS", value_name = "ORIGINS",
        default_value = "", hide_default_value = true, value_parser = setting(parse_origins))]
    allowed_origins: std::vec::Vec<Origin>,

    /// Whether logins bind sessions to their DPoP proof's key: off,
    /// optional (those that carry a proof) or required (every session)
    #[arg(long, env = "REISSUE_DPOP", value_name = "off|optional|required",
        default_value = "optional", value_parser = setting(parse_dpop))]
    dpop: DpopMode,

    /// The origin clients address (https://app.example.com), which DPoP
    /// proofs name in `htu`; empty: the request's Host
    #[arg(long, env = "REISSUE_PUBLIC_ORIGIN", value_name = "ORIGIN",
        default_value = "", hide_default_value = true, value_parser = setting(parse_optional_origin))]
    public_origin: std::option::Option<Origin>,

    /// Comma-separated emails whose users get role `admin`: only accounts
    /// the admin CLI created or vouched for (`reissue-admin users vouch`),
    /// never one that merely signed up with the address
    #[arg(long, env = "REISSUE_ADMIN_EMAILS", value_name = "EMAILS",
        default_value = "", hide_default_value = true, value_parser = setting(parse_emails))]
    admin_emails: HashSet<String>,

    /// Comma-separated CIDRs of proxies whose X-Forwarded-For is believed
    #[arg(long, env = "REISSUE_TRUSTED_PROXIES", value_name = "CIDRS",
        default_value = "", hide_default_value = true, value_parser = setting(parse_proxies))]
    trusted_proxies: TrustedProxies,

    /// MaxMind country database (.mmdb); SIGHUP reads it again
    #[arg(long, env = "REISSUE_GEOIP_DB", value_name = "PATH",
        default_value = "", hide_default_value = true, value_parser = setting(parse_optional_path))]
    geoip_db: std::option::Option<PathBuf>,

    /// Comma-separated ISO country codes allowed to log in (needs
    /// --geoip-db); empty: all
    #[arg(long, env = "REISSUE_ALLOWED_COUNTRIES", value_name = "CODES",
        default_value = "", hide_default_value = true, value_parser = setting(parse_countries))]
    allowed_countries: std::option::Option<CountryRule>,
}

impl AppArgs {
    /// The library's configuration: one line per setting it takes.
    fn config(&self) -> Config {
        let revocation = if self.strict_revocation {
            RevocationMode::Strict
        } else {
            self.revocation
        };
        let cookies = if self.cookies {
            CookieTransport::new().allowed_origins(self.allowed_origins.clone())
        } else {
            CookieTransport::off()
        };
        let config = Config::new(&self.issuer, &self.audience)
            .access_ttl(self.store.access_ttl())
            .access_ttl_jitter(self.access_ttl_jitter);
        let config = match &self.client_id {
            Some(id) => config.client_id(id),
            None => config,
        };
        let config = config
            .refresh_ttl(self.refresh_ttl)
            .session_max_age(self.store.session_max_age())
            .reuse_grace(self.reuse_grace)
            .revocation(revocation)
            .login_lockout(self.login_max_failures, self.login_lockout)
            .trusted_proxies(self.trusted_proxies.clone())
            .cookie_transport(cookies)
            .dpop(self.dpop);
        match &self.public_origin {
            Some(origin) => config.public_origin(origin.clone()),
            None => config,
        }
    }
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
    geoip_db: Option<PathBuf>,
    allowed_countries: Option<CountryRule>,
}

impl Settings {
    /// Reads the command line and the process environment. `--help` prints
    /// every flag with its variable and default, and exits; an unknown flag
    /// is a usage error (exit status 2).
    pub fn from_env() -> Result<Self, StartError> {
        // The usage line names the binary as clap finds it in `argv[0]`.
        let matches = AppArgs::command()
            .try_get_matches()
            .map_err(|e| refusal(&e).map_or_else(|| e.exit(), StartError))?;
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
        let mut names = Vec::new();
        for arg in command.get_arguments() {
            let (Some(env), Some(long)) = (arg.get_env().and_then(|e| e.to_str()), arg.get_long())
            else {
                continue;
            };
            if let Some(value) = var(env) {
                argv.push(format!("--{long}={value}").into());
            }
            names.push((format!("--{long}: "), format!("{env}: ")));
        }
        // Without their variables, the arguments' refusals name the flags:
        // named back, as the variables were what was given.
        let matches = command
            .mut_args(|a| a.env(None))
            .try_get_matches_from(argv)
            .map_err(|e| {
                let StartError(line) = first_line(&e);
                let named = names.iter().find_map(|(flag, env)| {
                    line.strip_prefix(flag.as_str())
                        .map(|why| format!("{env}{why}"))
                });
                StartError(named.unwrap_or(line))
            })?;
        let args = AppArgs::from_arg_matches(&matches).map_err(|e| first_line(&e))?;
        Self::from_args(args)
    }

    /// What the values alone cannot tell: the key files read and checked
    /// (so that a bad key refuses to start before anything is opened;
    /// `build` parses the same bytes again), and settings that need another.
    fn from_args(a: AppArgs) -> Result<Self, StartError> {
        let signing_pem = a
            .jwt_key
            .as_deref()
            .map(|path| read_key("REISSUE_JWT_KEY", path, Key::from_private_pem_detected))
            .transpose()?;
        let verify_pems = a
            .jwt_verify_keys
            .iter()
            .map(|path| read_key("REISSUE_JWT_VERIFY_KEYS", path, Key::from_pem_detected))
            .collect::<Result<_, _>>()?;
        if a.allowed_countries.is_some() && a.geoip_db.is_none() {
            return fail(
                "REISSUE_ALLOWED_COUNTRIES",
                "needs REISSUE_GEOIP_DB to know where addresses are",
            );
        }
        Ok(Self {
            addr: a.addr,
            config: a.config(),
            secret: a.jwt_secret,
            signing_pem,
            verify_pems,
            admin_emails: a.admin_emails,
            geoip_db: a.geoip_db,
            allowed_countries: a.allowed_countries,
            store: a.store,
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
        let logins = crate::AppUsers::new(users.clone(), self.admin_emails);
        let mut builder = Reissue::builder(self.config, keys, store, logins);
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
