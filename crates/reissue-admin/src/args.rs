//! The settings the admin CLI shares with the apps, defined once: where the
//! users and the sessions live, and the lifetimes the store keeps
//! revocations for. The apps flatten [`StoreArgs`] into their own
//! arguments, so both read them the same way and connect them with the same
//! two functions.

use std::fmt;
use std::time::Duration;

use reissue_core::store::{RedisStore, Retention};
use reissue_diesel::UserStore;

use crate::Error;
use crate::value::{parse_optional_text, parse_seconds, parse_text, setting};

/// `DATABASE_URL` when unset: the example apps' SQLite file in the working
/// directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://reissue-example.sqlite";

/// The clock skew the apps allow on `exp` (reissue's default leeway): an
/// ended session's access tokens die at most this much after `exp` on either
/// clock.
const LEEWAY: Duration = Duration::from_secs(5);

/// Where users and sessions live, and how long sessions last: the settings
/// of CONTRACT.md's configuration table that the admin CLI and the apps
/// share. Each is a flag and its environment variable; a blank variable
/// counts as unset.
///
/// ```
/// use clap::Parser;
/// use reissue_admin::StoreArgs;
///
/// #[derive(Parser)]
/// struct App {
///     #[command(flatten)]
///     store: StoreArgs,
/// }
///
/// let app = App::try_parse_from(["app", "--redis-url", "redis://127.0.0.1:6379"]).unwrap();
/// assert_eq!(app.store.redis_url(), Some("redis://127.0.0.1:6379"));
/// assert_eq!(app.store.redis_prefix(), "reissue:");
/// ```
#[derive(Clone, clap::Args)]
#[non_exhaustive]
pub struct StoreArgs {
    /// The user database: `sqlite://<file>` or `postgres://...`
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "URL",
        default_value = DEFAULT_DATABASE_URL,
        value_parser = setting(parse_text),
        hide_env_values = true
    )]
    database_url: String,

    /// The session store: `redis://`, `rediss://` (TLS),
    /// `redis-cluster://host:port[?node=host:port&...]` or
    /// `redis-sentinel://host:port[?node=...]&sentinelServiceName=<name>`.
    /// Unset: the apps keep sessions in process memory
    // `std::option::Option`, not `Option`: clap's derive would read the
    // latter as "a String if given", and a blank value must be `None`.
    #[arg(
        long,
        env = "REDIS_URL",
        value_name = "URL",
        default_value = "",
        hide_default_value = true,
        value_parser = setting(parse_optional_text),
        hide_env_values = true
    )]
    redis_url: std::option::Option<String>,

    /// The prefix of every Redis key; no `{` or `}`
    #[arg(
        long,
        env = "REISSUE_REDIS_PREFIX",
        value_name = "PREFIX",
        default_value = "reissue:",
        value_parser = setting(parse_text)
    )]
    redis_prefix: String,

    /// Access-token lifetime, seconds (ended sessions are remembered for
    /// instant revocation that long)
    #[arg(
        long,
        env = "REISSUE_ACCESS_TTL",
        value_name = "SECONDS",
        default_value = "300",
        value_parser = setting(parse_seconds)
    )]
    access_ttl: Duration,

    /// Absolute session lifetime, seconds (a "log out everywhere" mark lives
    /// that long)
    #[arg(
        long,
        env = "REISSUE_SESSION_MAX_AGE",
        value_name = "SECONDS",
        default_value = "2592000",
        value_parser = setting(parse_seconds)
    )]
    session_max_age: Duration,
}

/// The URLs may carry a password: `Debug` (and so a logged `Settings`)
/// shows them without it.
impl fmt::Debug for StoreArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreArgs")
            .field("database_url", &without_password(&self.database_url))
            .field(
                "redis_url",
                &self.redis_url.as_deref().map(without_password),
            )
            .field("redis_prefix", &self.redis_prefix)
            .field("access_ttl", &self.access_ttl)
            .field("session_max_age", &self.session_max_age)
            .finish()
    }
}

/// `scheme://user:password@host...` as `scheme://user:..@host...`; a
/// `password=` query parameter's value likewise.
fn without_password(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let authority_end = out[start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..authority_end].rfind('@').map(|i| start + i)
            && let Some(colon) = out[start..at].find(':').map(|i| start + i)
        {
            out.replace_range(colon + 1..at, "..");
        }
    }
    if let Some(i) = out.find("password=").map(|i| i + "password=".len()) {
        let end = out[i..].find('&').map_or(out.len(), |e| i + e);
        out.replace_range(i..end, "..");
    }
    out
}

impl StoreArgs {
    /// `DATABASE_URL`.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// `REDIS_URL`; `None` when unset or blank.
    pub fn redis_url(&self) -> Option<&str> {
        self.redis_url.as_deref()
    }

    /// `REISSUE_REDIS_PREFIX`.
    pub fn redis_prefix(&self) -> &str {
        &self.redis_prefix
    }

    /// `REISSUE_ACCESS_TTL`.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// `REISSUE_SESSION_MAX_AGE`.
    pub fn session_max_age(&self) -> Duration {
        self.session_max_age
    }

    /// What the store must keep for the apps' instant revocation, as a
    /// `Reissue` built from these settings tells it: an ended session for
    /// the access-token lifetime (plus the leeway on both clocks). A process
    /// that ends sessions without a `Reissue` (this CLI) must tell the store
    /// the same, or its revocations would trim the log shorter than the apps
    /// need.
    pub fn retention(&self) -> Retention {
        Retention::new(self.access_ttl + LEEWAY * 2)
    }

    /// Opens the user database and brings its schema up to date.
    pub async fn connect_users(&self) -> Result<UserStore, Error> {
        let users = UserStore::connect(self.database_url())
            .map_err(|e| Error::setting("DATABASE_URL", crate::error::chain(&e)))?;
        users
            .run_migrations()
            .await
            .map_err(|e| Error::setting("DATABASE_URL", crate::error::chain(&e)))?;
        Ok(users)
    }

    /// Connects to Redis with the prefix, told the [retention](Self::retention);
    /// `None` when `REDIS_URL` is unset.
    pub async fn connect_redis(&self) -> Result<Option<RedisStore>, Error> {
        let Some(url) = self.redis_url() else {
            return Ok(None);
        };
        let retention = self.retention();
        check_scheme(url)?;
        let store = RedisStore::builder(url)
            .key_prefix(self.redis_prefix())
            .connect()
            .await
            .map_err(|e| Error::setting("REDIS_URL", redis_reason(&e)))?;
        reissue_core::store::RevocationFeed::retain(&store, retention);
        Ok(Some(store))
    }
}

/// The URL forms of CONTRACT.md's "Redis deployments", with TLS. fred takes
/// any other scheme for `redis://`: a `REDIS_URL` meant for something else
/// would quietly connect to whatever Redis listens on the host.
const REDIS_SCHEMES: &[&str] = &[
    "redis",
    "rediss",
    "redis-cluster",
    "rediss-cluster",
    "redis-sentinel",
    "rediss-sentinel",
];

fn check_scheme(url: &str) -> Result<(), Error> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme {
        Some(s) if REDIS_SCHEMES.contains(&s.as_str()) => Ok(()),
        // The scheme only: the rest may hold a password.
        Some(s)
            if s.len() <= 32
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            Err(Error::setting(
                "REDIS_URL",
                format!(
                    "expected a redis://, rediss://, redis-cluster:// or redis-sentinel:// URL, got {s}://"
                ),
            ))
        }
        _ => Err(Error::setting(
            "REDIS_URL",
            "expected a redis://, rediss://, redis-cluster:// or redis-sentinel:// URL",
        )),
    }
}

/// A connection failure without the `REDIS_URL: ` the store's own
/// configuration errors already start with.
fn redis_reason(e: &reissue_core::Error) -> String {
    let line = crate::error::chain(e);
    let line = line
        .strip_prefix("configuration error: ")
        .unwrap_or(&line)
        .to_owned();
    line.strip_prefix("REDIS_URL: ")
        .map(str::to_owned)
        .unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn debug_hides_url_passwords() {
        assert_eq!(
            without_password("postgres://app:s3cret@db:5432/app"),
            "postgres://app:..@db:5432/app"
        );
        assert_eq!(
            without_password("redis://:p@ss@127.0.0.1:6379/0"),
            "redis://:..@127.0.0.1:6379/0"
        );
        assert_eq!(
            without_password("postgres://db/app?user=a&password=s3cret&sslmode=require"),
            "postgres://db/app?user=a&password=..&sslmode=require"
        );
        assert_eq!(without_password("sqlite://users.db"), "sqlite://users.db");
        assert_eq!(without_password("redis://user@host"), "redis://user@host");
    }
}
