//! The two backends: an r2d2 pool per backend behind one enum, and a macro
//! that expands one block of diesel code once per backend. This keeps a
//! single code path for the queries (diesel checks each expansion against
//! its backend) and lets each backend run its own embedded migrations.

use std::time::Duration;

use diesel::r2d2::{ConnectionManager, Pool};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::UserError;

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!("reissue-diesel needs a backend: enable the `postgres` or the `sqlite` feature");

#[cfg(feature = "postgres")]
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
#[cfg(feature = "sqlite")]
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// A connection pool for one backend.
pub(crate) enum Pools {
    #[cfg(feature = "postgres")]
    Postgres(Pool<ConnectionManager<diesel::PgConnection>>),
    #[cfg(feature = "sqlite")]
    Sqlite(Pool<ConnectionManager<diesel::SqliteConnection>>),
}

/// Runs `$body` with `$conn: &mut <the backend's connection>`, expanded once
/// per enabled backend. `$body` is a `Result<_, UserError>`.
macro_rules! with_conn {
    ($pools:expr, |$conn:ident| $body:expr) => {
        match $pools {
            #[cfg(feature = "postgres")]
            $crate::backend::Pools::Postgres(pool) => {
                let mut pooled = pool.get().map_err($crate::UserError::unavailable)?;
                let $conn: &mut ::diesel::PgConnection = &mut pooled;
                $body
            }
            #[cfg(feature = "sqlite")]
            $crate::backend::Pools::Sqlite(pool) => {
                let mut pooled = pool.get().map_err($crate::UserError::unavailable)?;
                let $conn: &mut ::diesel::SqliteConnection = &mut pooled;
                $body
            }
        }
    };
}
pub(crate) use with_conn;

/// Pool settings from the builder.
pub(crate) struct PoolConfig {
    pub(crate) max_size: Option<u32>,
    pub(crate) timeout: Duration,
}

/// Which backend a URL names, and what to hand the driver.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Postgres(String),
    SqliteFile(String),
    SqliteMemory,
}

fn parse(url: &str) -> Result<Target, UserError> {
    let url = url.trim();
    if url.is_empty() {
        return Err(UserError::Config("the database URL is empty".into()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres(url.to_owned()));
    }
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if let Some((scheme, _)) = url.split_once("://") {
        return Err(UserError::Config(format!(
            "unsupported database URL scheme `{scheme}`: use postgres://, sqlite:// or a file path"
        )));
    } else {
        url
    };
    match path {
        "" => Err(UserError::Config("the SQLite URL names no file".into())),
        ":memory:" => Ok(Target::SqliteMemory),
        path => Ok(Target::SqliteFile(path.to_owned())),
    }
}

impl Pools {
    /// Builds the pool and checks out one connection, so a wrong URL or an
    /// unreachable server is reported now. Blocks for up to `config.timeout`.
    pub(crate) fn connect(url: &str, config: &PoolConfig) -> Result<Self, UserError> {
        let target = parse(url)?;
        let pools = match target {
            #[cfg(feature = "postgres")]
            Target::Postgres(url) => {
                let pool = Pool::builder()
                    .max_size(config.max_size.unwrap_or(10))
                    .min_idle(Some(0))
                    .connection_timeout(config.timeout)
                    .error_handler(Box::new(TracingErrorHandler))
                    .build_unchecked(ConnectionManager::new(url));
                Self::Postgres(pool)
            }
            #[cfg(feature = "sqlite")]
            Target::SqliteFile(path) => {
                let dir = std::path::Path::new(&path)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty());
                if let Some(dir) = dir.filter(|d| !d.is_dir()) {
                    return Err(UserError::Config(format!(
                        "the directory of the SQLite database `{path}` does not exist: {}",
                        dir.display()
                    )));
                }
                let pool = Pool::builder()
                    .max_size(config.max_size.unwrap_or(4))
                    .min_idle(Some(0))
                    .connection_timeout(config.timeout)
                    .error_handler(Box::new(TracingErrorHandler))
                    .connection_customizer(Box::new(SqlitePragmas))
                    .build_unchecked(ConnectionManager::new(path));
                Self::Sqlite(pool)
            }
            #[cfg(feature = "sqlite")]
            Target::SqliteMemory => {
                // Every connection to `:memory:` is its own database: keep
                // exactly one, forever.
                let pool = Pool::builder()
                    .max_size(1)
                    .min_idle(Some(1))
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connection_timeout(config.timeout)
                    .error_handler(Box::new(TracingErrorHandler))
                    .connection_customizer(Box::new(SqlitePragmas))
                    .build_unchecked(ConnectionManager::new(":memory:"));
                Self::Sqlite(pool)
            }
            #[allow(unreachable_patterns)]
            other => {
                return Err(UserError::Config(format!(
                    "the database URL needs the `{}` feature of reissue-diesel",
                    if matches!(other, Target::Postgres(_)) {
                        "postgres"
                    } else {
                        "sqlite"
                    }
                )));
            }
        };
        with_conn!(&pools, |_conn| Ok::<_, UserError>(()))?;
        Ok(pools)
    }

    /// The most connections the pool opens.
    pub(crate) fn max_size(&self) -> u32 {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => pool.max_size(),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => pool.max_size(),
        }
    }

    pub(crate) fn backend_name(&self) -> &'static str {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => "postgres",
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => "sqlite",
        }
    }

    /// Applies the embedded migrations that have not run yet.
    pub(crate) fn run_migrations(&self) -> Result<(), UserError> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => {
                let mut conn = pool.get().map_err(UserError::unavailable)?;
                conn.run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map_err(UserError::Unavailable)?;
            }
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => {
                let mut conn = pool.get().map_err(UserError::unavailable)?;
                conn.run_pending_migrations(SQLITE_MIGRATIONS)
                    .map_err(UserError::Unavailable)?;
            }
        }
        Ok(())
    }
}

/// Reports r2d2's background connection failures through `tracing` rather
/// than the `log` crate.
#[derive(Debug)]
struct TracingErrorHandler;

impl diesel::r2d2::HandleError<diesel::r2d2::Error> for TracingErrorHandler {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::warn!(%error, "user database connection failed");
    }
}

/// Per-connection SQLite settings: wait for locks instead of failing at once,
/// and WAL so readers do not block the writer.
#[cfg(feature = "sqlite")]
#[derive(Debug)]
struct SqlitePragmas;

#[cfg(feature = "sqlite")]
impl diesel::r2d2::CustomizeConnection<diesel::SqliteConnection, diesel::r2d2::Error>
    for SqlitePragmas
{
    fn on_acquire(&self, conn: &mut diesel::SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        use diesel::connection::SimpleConnection;
        conn.batch_execute(
            "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
        )
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let pg = |s: &str| Target::Postgres(s.to_owned());
        let file = |s: &str| Target::SqliteFile(s.to_owned());
        assert_eq!(parse("postgres://u@h/db").unwrap(), pg("postgres://u@h/db"));
        assert_eq!(
            parse("postgresql://u@h/db").unwrap(),
            pg("postgresql://u@h/db")
        );
        assert_eq!(parse("sqlite://app.db").unwrap(), file("app.db"));
        assert_eq!(parse("sqlite:///tmp/app.db").unwrap(), file("/tmp/app.db"));
        assert_eq!(parse("sqlite:app.db").unwrap(), file("app.db"));
        assert_eq!(parse("data/app.db").unwrap(), file("data/app.db"));
        assert_eq!(parse(":memory:").unwrap(), Target::SqliteMemory);
        assert_eq!(parse("sqlite::memory:").unwrap(), Target::SqliteMemory);
        assert_eq!(parse("sqlite://:memory:").unwrap(), Target::SqliteMemory);
        for bad in ["", "sqlite://", "sqlite:", "mysql://u@h/db"] {
            assert!(matches!(parse(bad), Err(UserError::Config(_))), "{bad:?}");
        }
    }
}
