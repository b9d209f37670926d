//! `UserStore`: the users table behind an async API.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::prelude::*;
use reissue_core::password::{Argon2Params, PasswordHasher, Verified};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::backend::{PoolConfig, Pools, with_conn};
use crate::schema::users;
use crate::{UserError, validate};

/// A user as stored. The password hash is deliberately not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct User {
    /// The database id; `to_string()` of it is the tokens' `sub`.
    pub id: i64,
    /// The normalised email: trimmed and lower-cased.
    pub email: String,
    /// The user's roles, in the order they were set.
    pub roles: Vec<String>,
    /// When the user was created, Unix seconds.
    pub created_at: i64,
    /// When the password or the roles last changed, Unix seconds.
    pub updated_at: i64,
    /// When an operator vouched for the account ([`UserStore::set_vouched`]),
    /// Unix seconds; `None` for an account that only signed itself up.
    pub vouched_at: Option<i64>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
struct UserRow {
    id: i64,
    email: String,
    password_hash: String,
    roles: String,
    created_at: i64,
    updated_at: i64,
    vouched_at: Option<i64>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            email: row.email,
            roles: validate::decode_roles(&row.roles),
            created_at: row.created_at,
            updated_at: row.updated_at,
            vouched_at: row.vouched_at,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUser<'a> {
    email: &'a str,
    password_hash: &'a str,
    roles: &'a str,
    created_at: i64,
    updated_at: i64,
}

/// The user database: create users, look them up, change passwords and roles,
/// and check logins (it implements [`reissue_core::Authenticator`]).
///
/// Cloning is cheap: clones share the connection pool and the limits.
/// Every method needs a tokio runtime (actix-web's and axum's both are).
#[derive(Clone)]
pub struct UserStore {
    inner: Arc<Inner>,
}

struct Inner {
    pools: Pools,
    /// argon2 on the blocking pool, bounded, with a bounded queue.
    hasher: PasswordHasher,
    /// One permit per pooled connection: callers queue here, so the pool's
    /// short checkout timeout only fires when the database is unreachable.
    db_permits: Arc<Semaphore>,
}

impl fmt::Debug for UserStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserStore")
            .field("backend", &self.inner.pools.backend_name())
            .field("max_connections", &self.inner.pools.max_size())
            .field("argon2", &self.inner.hasher.params())
            .field("hash_concurrency", &self.inner.hasher.concurrency())
            .field("hash_queue", &self.inner.hasher.queue())
            .finish_non_exhaustive()
    }
}

/// Settings for [`UserStore`]; made by [`UserStore::builder`].
#[must_use]
pub struct UserStoreBuilder {
    url: String,
    argon2: Argon2Params,
    max_connections: Option<u32>,
    connect_timeout: Duration,
    hash_concurrency: Option<usize>,
    hash_queue: Option<usize>,
}

impl fmt::Debug for UserStoreBuilder {
    // The URL may hold a password: leave it out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserStoreBuilder")
            .field("argon2", &self.argon2)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("hash_concurrency", &self.hash_concurrency)
            .field("hash_queue", &self.hash_queue)
            .finish_non_exhaustive()
    }
}

impl UserStoreBuilder {
    /// argon2id parameters for new hashes; default [`Argon2Params::OWASP`].
    pub fn argon2_params(mut self, params: Argon2Params) -> Self {
        self.argon2 = params;
        self
    }

    /// Pool size. Default 10 for Postgres, 4 for a SQLite file; always 1
    /// for `:memory:`.
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = Some(max.max(1));
        self
    }

    /// How long to wait for a database connection before answering
    /// [`UserError::Unavailable`]. Default 2 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many argon2 hashes (logins, sign-ups, password changes) may run at
    /// once. Default: one fewer than the CPUs
    /// (`std::thread::available_parallelism`), and at least one.
    ///
    /// Every hash keeps one core busy for its whole run (about 15 ms with
    /// the default parameters), so with one hash per core a burst of logins
    /// takes every core, and every other request of the process, a protected
    /// route's included, waits for the scheduler: on a 2-core machine `GET
    /// /me` p99 rose 15-25× during 50 concurrent logins. The default leaves
    /// one core to everything else (docs/BENCHMARKS.md, "Login storm", has
    /// the figures), at the cost of login throughput: `(cores - 1) / cores`
    /// of what the machine could hash.
    /// Raise it on a machine that does little besides logging users in;
    /// lower it to keep more cores for other work. On one CPU the default is
    /// one, which protects nothing.
    ///
    /// Logins beyond the bound wait in a first-come, first-served queue of
    /// at most [`hash_queue`](Self::hash_queue) and then proceed. An unknown
    /// email waits in the same queue and then runs its dummy verify under
    /// the same bound, so the queue cannot tell it from a wrong password.
    /// Each running hash keeps its work area (the argon2 memory cost,
    /// 19 MiB by default) for reuse. This is
    /// [`PasswordHasherBuilder::concurrency`](reissue_core::password::PasswordHasherBuilder::concurrency).
    pub fn hash_concurrency(mut self, permits: usize) -> Self {
        self.hash_concurrency = Some(permits.max(1));
        self
    }

    /// How many logins, sign-ups and password changes may wait for a hash
    /// to finish; default 64. Past it they fail at once: a login with
    /// [`reissue_core::Error::Overloaded`] (503 `temporarily_unavailable`
    /// with `Retry-After`), the other calls with [`UserError::Overloaded`].
    /// So a flood of logins for random emails cannot make everyone's login
    /// wait without end. This is
    /// [`PasswordHasherBuilder::queue`](reissue_core::password::PasswordHasherBuilder::queue).
    pub fn hash_queue(mut self, waiting: usize) -> Self {
        self.hash_queue = Some(waiting);
        self
    }

    /// Opens the pool and checks out one connection, so a bad URL or an
    /// unreachable database is reported here. Blocks the calling thread for
    /// up to the connect timeout: call it at start-up.
    ///
    /// # Errors
    /// [`UserError::Config`] for an unusable URL (unknown scheme, SQLite file
    /// in a missing directory, backend feature disabled) or bad argon2
    /// parameters; [`UserError::Unavailable`] when the database cannot be
    /// reached.
    pub fn connect(self) -> Result<UserStore, UserError> {
        let mut hasher = PasswordHasher::builder().params(self.argon2);
        if let Some(n) = self.hash_concurrency {
            hasher = hasher.concurrency(n);
        }
        if let Some(n) = self.hash_queue {
            hasher = hasher.queue(n);
        }
        let hasher = hasher
            .build()
            .map_err(|e| UserError::Config(e.to_string()))?;
        let config = PoolConfig {
            max_size: self.max_connections,
            timeout: self.connect_timeout,
        };
        let pools = Pools::connect(&self.url, &config)?;
        let db_permits = usize::try_from(pools.max_size()).unwrap_or(1);
        Ok(UserStore {
            inner: Arc::new(Inner {
                pools,
                hasher,
                db_permits: Arc::new(Semaphore::new(db_permits)),
            }),
        })
    }
}

impl UserStore {
    /// Connects with the default settings; see [`UserStoreBuilder::connect`].
    ///
    /// `url` picks the backend: `postgres://...` or `postgresql://...`;
    /// `sqlite://path`, `sqlite:path`, a plain file path, or `:memory:`.
    ///
    /// # Errors
    /// As [`UserStoreBuilder::connect`].
    pub fn connect(url: &str) -> Result<Self, UserError> {
        Self::builder(url).connect()
    }

    /// A builder for a store at `url`, to change the defaults.
    pub fn builder(url: impl Into<String>) -> UserStoreBuilder {
        UserStoreBuilder {
            url: url.into(),
            argon2: Argon2Params::default(),
            max_connections: None,
            connect_timeout: Duration::from_secs(2),
            hash_concurrency: None,
            hash_queue: None,
        }
    }

    /// How many argon2 hashes may run at once; see
    /// [`UserStoreBuilder::hash_concurrency`].
    pub fn hash_concurrency(&self) -> usize {
        self.inner.hasher.concurrency()
    }

    /// Creates the `users` table, or brings it up to date: applies the
    /// embedded migrations of the backend that have not run yet.
    ///
    /// # Errors
    /// [`UserError::Unavailable`] when the database is unreachable or a
    /// migration fails.
    pub async fn run_migrations(&self) -> Result<(), UserError> {
        self.db(|pools| pools.run_migrations()).await
    }

    /// Creates a user with an argon2id hash of `password`.
    ///
    /// The email is trimmed and lower-cased before it is checked and stored.
    ///
    /// # Errors
    /// [`UserError::InvalidEmail`], [`UserError::InvalidPassword`] (fewer than
    /// 8 or more than 1024 characters, or control characters),
    /// [`UserError::InvalidRole`], [`UserError::EmailTaken`],
    /// [`UserError::Unavailable`].
    pub async fn create_user(
        &self,
        email: &str,
        password: &str,
        roles: &[&str],
    ) -> Result<User, UserError> {
        let email = validate::email(email)?;
        validate::password(password)?;
        let roles = validate::encode_roles(&validate::roles(roles)?);
        let hash = self
            .inner
            .hasher
            .hash(password)
            .await
            .map_err(hash_failed)?;
        self.db(move |pools| {
            with_conn!(pools, |conn| {
                let now = now();
                let row = conn.transaction(|conn| {
                    diesel::insert_into(users::table)
                        .values(NewUser {
                            email: &email,
                            password_hash: &hash,
                            roles: &roles,
                            created_at: now,
                            updated_at: now,
                        })
                        .execute(conn)?;
                    users::table
                        .filter(users::email.eq(&email))
                        .select(UserRow::as_select())
                        .first(conn)
                })?;
                Ok(User::from(row))
            })
        })
        .await
    }

    /// The user with this id, if any.
    ///
    /// # Errors
    /// [`UserError::Unavailable`].
    pub async fn find_by_id(&self, id: i64) -> Result<Option<User>, UserError> {
        self.db(move |pools| {
            with_conn!(pools, |conn| {
                let row = users::table
                    .find(id)
                    .select(UserRow::as_select())
                    .first(conn)
                    .optional()?;
                Ok(row.map(User::from))
            })
        })
        .await
    }

    /// The user with this email (compared after trimming and lower-casing),
    /// if any. A malformed email finds no one.
    ///
    /// # Errors
    /// [`UserError::Unavailable`].
    pub async fn find_by_email(&self, email: &str) -> Result<Option<User>, UserError> {
        let Ok(email) = validate::email(email) else {
            return Ok(None);
        };
        Ok(self.row_by_email(email).await?.map(User::from))
    }

    /// Replaces the user's password with a new argon2id hash.
    ///
    /// # Errors
    /// [`UserError::InvalidPassword`], [`UserError::NotFound`],
    /// [`UserError::Unavailable`].
    pub async fn set_password(&self, id: i64, password: &str) -> Result<(), UserError> {
        validate::password(password)?;
        let hash = self
            .inner
            .hasher
            .hash(password)
            .await
            .map_err(hash_failed)?;
        self.db(move |pools| {
            with_conn!(pools, |conn| {
                let changed = diesel::update(users::table.find(id))
                    .set((users::password_hash.eq(&hash), users::updated_at.eq(now())))
                    .execute(conn)?;
                if changed == 0 {
                    Err(UserError::NotFound)
                } else {
                    Ok(())
                }
            })
        })
        .await
    }

    /// Replaces the user's roles. Duplicates are dropped.
    ///
    /// New logins carry the new roles. A live session keeps the claims it
    /// logged in with (its reissues mint from them), so to take a role away
    /// at once, end the user's sessions too with `Reissue::force_logout`.
    ///
    /// # Errors
    /// [`UserError::InvalidRole`] (empty, over 64 bytes, or containing a
    /// comma, whitespace or a control character), [`UserError::NotFound`],
    /// [`UserError::Unavailable`].
    pub async fn set_roles(&self, id: i64, roles: &[&str]) -> Result<(), UserError> {
        let roles = validate::encode_roles(&validate::roles(roles)?);
        self.db(move |pools| {
            with_conn!(pools, |conn| {
                let changed = diesel::update(users::table.find(id))
                    .set((users::roles.eq(&roles), users::updated_at.eq(now())))
                    .execute(conn)?;
                if changed == 0 {
                    Err(UserError::NotFound)
                } else {
                    Ok(())
                }
            })
        })
        .await
    }

    /// Marks the account as vouched for by an operator, now (`true`), or
    /// takes the mark away (`false`). A sign-up proves nothing about whose
    /// the email is: what an app grants by email belongs to vouched accounts
    /// only.
    ///
    /// # Errors
    /// [`UserError::NotFound`], [`UserError::Unavailable`].
    pub async fn set_vouched(&self, id: i64, vouched: bool) -> Result<(), UserError> {
        self.db(move |pools| {
            with_conn!(pools, |conn| {
                let changed = diesel::update(users::table.find(id))
                    .set(users::vouched_at.eq(vouched.then(now)))
                    .execute(conn)?;
                if changed == 0 {
                    Err(UserError::NotFound)
                } else {
                    Ok(())
                }
            })
        })
        .await
    }

    /// Checks a login: `Some(user)` for the right password, `None` for a
    /// wrong password, an unknown email or input that no account could match,
    /// in the same time for the first two. Rehashes an outdated hash.
    ///
    /// # Errors
    /// [`reissue_core::Error::Overloaded`] when the hash queue is full,
    /// [`reissue_core::Error::Unavailable`] when the database is.
    pub(crate) async fn check_login(
        &self,
        email: &str,
        password: &str,
    ) -> reissue_core::Result<Option<User>> {
        // Input that fails validation matches no stored account; answering at
        // once reveals nothing about which accounts exist.
        let Ok(email) = validate::email(email) else {
            return Ok(None);
        };
        if validate::password(password).is_err() {
            return Ok(None);
        }
        let row = self.row_by_email(email).await?;
        let stored = row.as_ref().map(|r| r.password_hash.as_str());
        let verified = self.inner.hasher.verify(password, stored).await?;
        let Some(row) = row else { return Ok(None) };
        match verified {
            Verified::Match => Ok(Some(row.into())),
            Verified::Rehashed(new_hash) => {
                if let Err(error) = self
                    .replace_hash(row.id, row.password_hash.clone(), new_hash)
                    .await
                {
                    // The login is good either way; the upgrade is retried next time.
                    tracing::warn!(%error, user_id = row.id, "could not save an upgraded password hash");
                }
                Ok(Some(row.into()))
            }
            // `Mismatch`, and whatever a later version of the hasher adds.
            _ => Ok(None),
        }
    }

    /// Swaps `old` for `new`, unless the password changed meanwhile.
    async fn replace_hash(&self, id: i64, old: String, new: String) -> Result<(), UserError> {
        self.db(move |pools| {
            with_conn!(pools, |conn| {
                diesel::update(
                    users::table
                        .filter(users::id.eq(id))
                        .filter(users::password_hash.eq(&old)),
                )
                .set((users::password_hash.eq(&new), users::updated_at.eq(now())))
                .execute(conn)?;
                Ok(())
            })
        })
        .await
    }

    async fn row_by_email(&self, email: String) -> Result<Option<UserRow>, UserError> {
        self.db(move |pools| {
            with_conn!(pools, |conn| {
                Ok(users::table
                    .filter(users::email.eq(&email))
                    .select(UserRow::as_select())
                    .first(conn)
                    .optional()?)
            })
        })
        .await
    }

    /// Runs blocking database work on tokio's blocking pool: diesel is
    /// synchronous, and diesel-async has no SQLite backend.
    async fn db<T, F>(&self, work: F) -> Result<T, UserError>
    where
        F: FnOnce(&Pools) -> Result<T, UserError> + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.inner.db_permits)
            .acquire_owned()
            .await
            .map_err(UserError::unavailable)?;
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let _permit = permit;
            work(&inner.pools)
        })
        .await?
    }
}

async fn blocking<T, F>(work: F) -> Result<T, UserError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only when the runtime is shutting down.
        Err(e) => Err(UserError::unavailable(e)),
    }
}

/// The hasher's refusals in the store's words. Hashing fails only when the
/// queue is full; anything else is argon2 refusing its own parameters.
fn hash_failed(e: reissue_core::Error) -> UserError {
    match e {
        reissue_core::Error::Overloaded { retry_after } => UserError::Overloaded { retry_after },
        reissue_core::Error::Unavailable(source) => UserError::Unavailable(source),
        other => UserError::Config(other.to_string()),
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(hash_concurrency: Option<usize>) -> UserStore {
        let mut builder =
            UserStore::builder(":memory:").argon2_params(Argon2Params::new(8, 1, 1).unwrap());
        if let Some(n) = hash_concurrency {
            builder = builder.hash_concurrency(n);
        }
        builder.connect().unwrap()
    }

    #[test]
    fn default_leaves_a_core_free() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let expected = if cores > 1 { cores - 1 } else { 1 };
        assert_eq!(store(None).hash_concurrency(), expected);
        assert_eq!(store(Some(3)).hash_concurrency(), 3);
        assert_eq!(store(Some(0)).hash_concurrency(), 1);
        let debug = format!("{:?}", store(Some(3)));
        assert!(debug.contains("hash_concurrency: 3"), "{debug}");
        assert!(debug.contains("hash_queue: 64"), "{debug}");
    }
}
