//! reissue on axum with the users in the application's own Postgres table,
//! through sqlx: what an app that already has a user table writes.
//!
//! - [`Users`] is the table behind a sqlx pool, and implements
//!   [`reissue_core::Authenticator`]: an unknown email is verified against
//!   `None` by [`PasswordHasher`], so it costs the same argon2 work as a
//!   wrong password and gets the same 401; argon2 runs on tokio's blocking
//!   pool, bounded, and a full queue is 503 with `Retry-After`.
//! - [`app`] is the router: `POST /signup`, `GET /me` behind
//!   [`ReissueLayer`], `GET /health`, and reissue's `/auth` routes.
//! - [`Settings`] reads the environment (the variables of the other example
//!   apps that this one honours: see [`Settings::from_lookup`]).
//!
//! The conformance suite's login and reissue rows run on it
//! (the `sqlx` cells of `tests/tests/contract.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use reissue_core::password::{Argon2Params, PasswordHasher, Verified};
use reissue_core::policy::TrustedProxies;
use reissue_core::store::{MemoryStore, RedisStore, RefreshStore};
use reissue_core::{
    Algorithm, Authenticated, Authenticator, Config, Error, Key, KeySet, Reissue, Reply, Result,
    UserClaims, json_body,
};
use reissue_tower::{AuthUser, BufferedRequest, DrainBodyLayer, ReissueLayer, ReplyResponse};
use serde::Deserialize;
use sqlx::postgres::{PgPool, PgPoolOptions};

/// The login and sign-up body, `{"email": "...", "password": "..."}`.
#[derive(Deserialize)]
pub struct Login {
    email: String,
    password: String,
}

impl std::fmt::Debug for Login {
    // Never a password in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// The application's users: a Postgres table, read and written with sqlx.
#[derive(Debug, Clone)]
pub struct Users {
    pool: PgPool,
    hasher: PasswordHasher,
}

/// The table, created at start if missing (an app with migrations keeps
/// this in one).
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS app_users (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL
)";

impl Users {
    /// Connects to `database_url` and creates the table if it is missing.
    ///
    /// # Errors
    /// The database cannot be reached or refuses the table.
    pub async fn connect(database_url: &str, hasher: PasswordHasher) -> sqlx::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            // An unreachable database is a quick 503, not a hung login.
            .acquire_timeout(Duration::from_secs(2))
            .connect(database_url)
            .await?;
        sqlx::query(CREATE_TABLE).execute(&pool).await?;
        Ok(Self { pool, hasher })
    }

    /// Creates a user; `Ok(None)` when the email is taken.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] for a malformed email or a password under
    /// 8 characters, [`Error::Overloaded`] when the hash queue is full,
    /// [`Error::Unavailable`] when the database is.
    pub async fn sign_up(&self, login: &Login) -> Result<Option<i64>> {
        let email = normalised_email(&login.email)?;
        if login.password.chars().count() < 8 {
            return Err(Error::InvalidRequest(
                "the password must be at least 8 characters long".into(),
            ));
        }
        let hash = self.hasher.hash(&login.password).await?;
        let id: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO app_users (email, password_hash) VALUES ($1, $2)
             ON CONFLICT (email) DO NOTHING RETURNING id",
        )
        .bind(&email)
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(Error::unavailable)?;
        Ok(id.map(|(id,)| id))
    }
}

impl Authenticator for Users {
    type Credentials = Login;
    type Claims = UserClaims;

    fn account_key(&self, login: &Login) -> Result<String> {
        normalised_email(&login.email)
    }

    async fn authenticate(&self, login: Login) -> Result<Authenticated<UserClaims>> {
        let email = normalised_email(&login.email)?;
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT id, password_hash FROM app_users WHERE email = $1")
                .bind(&email)
                .fetch_optional(&self.pool)
                .await
                .map_err(Error::unavailable)?;
        // No early return for an unknown email: `None` costs what a wrong
        // password costs, and both end in the same error below.
        let stored = row.as_ref().map(|(_, hash)| hash.as_str());
        let verified = self.hasher.verify(&login.password, stored).await?;
        let Some((id, old_hash)) = row else {
            return Err(Error::InvalidCredentials);
        };
        if let Verified::Rehashed(new_hash) = &verified {
            // The hash had older parameters; unless the password changed
            // meanwhile, keep the new one. The login is good either way.
            let saved = sqlx::query(
                "UPDATE app_users SET password_hash = $1 WHERE id = $2 AND password_hash = $3",
            )
            .bind(new_hash)
            .bind(id)
            .bind(&old_hash)
            .execute(&self.pool)
            .await;
            if let Err(error) = saved {
                tracing::warn!(%error, "could not save an upgraded password hash");
            }
        }
        if !verified.is_match() {
            return Err(Error::InvalidCredentials);
        }
        Ok(Authenticated::new(id.to_string(), UserClaims::new(email, Vec::new())).amr(["pwd"]))
    }
}

/// Trimmed and lower-cased; anything that cannot be an email is 400.
fn normalised_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && email.len() <= 254
                && !email.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(email)
        }
        _ => Err(Error::InvalidRequest(
            "the email address is malformed".into(),
        )),
    }
}

/// What the app is started with, from environment variables.
#[derive(Debug)]
pub struct Settings {
    database_url: String,
    redis_url: Option<String>,
    redis_prefix: Option<String>,
    secret: String,
    config: Config,
    hasher: PasswordHasher,
}

impl Settings {
    /// Reads the settings through `var` (`std::env::var(..).ok()` in
    /// `main`, a map in the tests). The variables, all optional but the
    /// secret, are those of the other example apps:
    ///
    /// | variable | default |
    /// |---|---|
    /// | `DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/postgres` |
    /// | `REDIS_URL`, `REISSUE_REDIS_PREFIX` | unset: the memory store |
    /// | `REISSUE_JWT_SECRET` | required, at least 32 bytes |
    /// | `REISSUE_ISSUER`, `REISSUE_AUDIENCE` | `sqlx-app` |
    /// | `REISSUE_REFRESH_TTL`, `REISSUE_SESSION_MAX_AGE`, `REISSUE_REUSE_GRACE` | reissue's defaults, seconds |
    /// | `REISSUE_LOGIN_MAX_FAILURES`, `REISSUE_LOGIN_LOCKOUT` | 5, 300 |
    /// | `REISSUE_TRUSTED_PROXIES` | none (comma-separated CIDRs) |
    /// | `REISSUE_HASH_CONCURRENCY`, `REISSUE_HASH_QUEUE` | the hasher's defaults |
    /// | `REISSUE_ARGON2` | `m,t,p`, default the OWASP minimum |
    ///
    /// # Errors
    /// A variable that is missing or does not parse, named.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> std::result::Result<Self, String> {
        let number = |name: &str| -> std::result::Result<Option<u64>, String> {
            var(name)
                .map(|v| {
                    v.trim()
                        .parse()
                        .map_err(|_| format!("{name}: not a number: {v:?}"))
                })
                .transpose()
        };
        let seconds = |name: &str| Ok::<_, String>(number(name)?.map(Duration::from_secs));
        let secret = var("REISSUE_JWT_SECRET").ok_or("REISSUE_JWT_SECRET is required")?;
        let mut config = Config::new(
            var("REISSUE_ISSUER").unwrap_or_else(|| "sqlx-app".into()),
            var("REISSUE_AUDIENCE").unwrap_or_else(|| "sqlx-app".into()),
        );
        if let Some(ttl) = seconds("REISSUE_REFRESH_TTL")? {
            config = config.refresh_ttl(ttl);
        }
        if let Some(age) = seconds("REISSUE_SESSION_MAX_AGE")? {
            config = config.session_max_age(age);
        }
        if let Some(grace) = seconds("REISSUE_REUSE_GRACE")? {
            config = config.reuse_grace(grace);
        }
        let max_failures = number("REISSUE_LOGIN_MAX_FAILURES")?.unwrap_or(5);
        let lockout = seconds("REISSUE_LOGIN_LOCKOUT")?.unwrap_or(Duration::from_secs(300));
        config = config.login_lockout(
            u32::try_from(max_failures).map_err(|_| "REISSUE_LOGIN_MAX_FAILURES: too large")?,
            lockout,
        );
        if let Some(list) = var("REISSUE_TRUSTED_PROXIES") {
            let proxies = TrustedProxies::parse(&list)
                .map_err(|e| format!("REISSUE_TRUSTED_PROXIES: {e}"))?;
            config = config.trusted_proxies(proxies);
        }
        let mut hasher = PasswordHasher::builder();
        if let Some(n) = number("REISSUE_HASH_CONCURRENCY")? {
            hasher = hasher.concurrency(usize::try_from(n).unwrap_or(usize::MAX));
        }
        if let Some(n) = number("REISSUE_HASH_QUEUE")? {
            hasher = hasher.queue(usize::try_from(n).unwrap_or(usize::MAX));
        }
        if let Some(mtp) = var("REISSUE_ARGON2") {
            let bad = || format!("REISSUE_ARGON2: expected m,t,p, got {mtp:?}");
            let parts: Vec<u32> = mtp
                .split(',')
                .map(|p| p.trim().parse().map_err(|_| bad()))
                .collect::<std::result::Result<_, _>>()?;
            let [m, t, p] = parts[..] else {
                return Err(bad());
            };
            let params = Argon2Params::new(m, t, p).map_err(|e| format!("REISSUE_ARGON2: {e}"))?;
            hasher = hasher.params(params);
        }
        Ok(Self {
            database_url: var("DATABASE_URL")
                .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into()),
            redis_url: var("REDIS_URL"),
            redis_prefix: var("REISSUE_REDIS_PREFIX"),
            secret,
            config,
            hasher: hasher.build().map_err(|e| e.to_string())?,
        })
    }

    /// Connects to the user table and the session store.
    ///
    /// # Errors
    /// The database, the store or the key refused; the text says which.
    pub async fn connect(self) -> std::result::Result<Reissue<Users>, String> {
        let users = Users::connect(&self.database_url, self.hasher)
            .await
            .map_err(|e| format!("DATABASE_URL: {e}"))?;
        let store: Arc<dyn RefreshStore> = match &self.redis_url {
            Some(url) => {
                let mut redis = RedisStore::builder(url.as_str());
                if let Some(prefix) = &self.redis_prefix {
                    redis = redis.key_prefix(prefix.as_str());
                }
                Arc::new(
                    redis
                        .connect()
                        .await
                        .map_err(|e| format!("REDIS_URL: {e}"))?,
                )
            }
            None => Arc::new(MemoryStore::new()),
        };
        let key = Key::hmac("hs256-1", Algorithm::HS256, self.secret.as_bytes())
            .map_err(|e| format!("REISSUE_JWT_SECRET: {e}"))?;
        let keys = KeySet::new(key).map_err(|e| e.to_string())?;
        Reissue::builder(self.config, keys, store, users)
            .build()
            .map_err(|e| e.to_string())
    }
}

/// The application's routes around reissue's.
pub fn app(reissue: Reissue<Users>) -> Router {
    let protected = Router::new()
        .route("/me", get(me))
        .route_layer(ReissueLayer::new(reissue.verifier().clone()));
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/signup", post(signup))
        .with_state(reissue.clone())
        .merge(protected)
        .merge(reissue_tower::router(reissue))
        .layer(DrainBodyLayer::new())
}

/// Serves [`app`] on `listener`, with each connection's peer address for
/// reissue (the client address of the login throttle and the session list).
///
/// # Errors
/// The listener fails.
pub async fn serve(
    listener: std::net::TcpListener,
    reissue: Reissue<Users>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    axum::serve(
        listener,
        app(reissue).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

/// `POST /signup`: 201 `{"id", "email"}`, 409 `email_taken`, 400 for a
/// malformed email, a short password or an unusable body.
async fn signup(State(reissue): State<Reissue<Users>>, req: BufferedRequest) -> ReplyResponse {
    let reply = async {
        let login: Login = json_body(&req, req.body())?;
        let email = normalised_email(&login.email)?;
        Ok::<_, Error>(match reissue.authenticator().sign_up(&login).await? {
            Some(id) => Reply::json(
                201,
                &serde_json::json!({ "id": id.to_string(), "email": email }),
            ),
            None => Reply::json(
                409,
                &serde_json::json!({
                    "error": "email_taken",
                    "error_description": "an account with this email exists",
                }),
            ),
        })
    };
    reply.await.unwrap_or_else(|e| reissue.reply(&e)).into()
}

/// `GET /me`: the caller, as the access token says.
async fn me(user: AuthUser<UserClaims>) -> ReplyResponse {
    Reply::json(
        200,
        &serde_json::json!({
            "id": user.user_id,
            "email": user.claims.email,
            "roles": user.claims.roles,
            "sid": user.session_id.as_str(),
        }),
    )
    .into()
}
