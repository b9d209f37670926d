//! What reissue's two example apps share, so that they differ only in
//! framework glue: the configuration of CONTRACT.md read from flags and the
//! environment (with clap; `--help` lists it),
//! the wiring of a [`Reissue`] over the user database, and the app's own
//! endpoints (`/health`, `/signup`, `/me`, `/admin/users/{id}/logout`) as
//! framework-neutral functions returning a [`Reply`], and `GET /openapi.json`
//! describing them all.
#![forbid(unsafe_code)]

mod openapi;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use reissue_core::policy::GeoIp;
use reissue_core::{
    Authenticated, Authenticator, HttpRequest, Identity, Reissue, Reply, UserClaims, json_body,
};
use reissue_diesel::{EmailPassword, UserError, UserStore};
use serde::Deserialize;

mod settings;
pub mod values;

pub use settings::{Settings, StartError};

/// Histogram buckets of `reissue_store_duration_seconds`: a local Redis
/// answers in well under a millisecond, a troubled one in seconds.
const STORE_LATENCY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The role that may force other users out.
pub const ADMIN_ROLE: &str = "admin";

/// Everything the handlers need. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Sessions and tokens.
    pub reissue: Reissue<AppUsers>,
    /// The user database.
    pub users: UserStore,
    geoip: Option<Arc<GeoIp>>,
    metrics: PrometheusHandle,
    /// `GET /openapi.json`'s body: the document never changes while the app runs.
    openapi_json: Arc<str>,
}

/// The apps' logins: the user database, which gives each user the roles
/// stored with it, plus role `admin` for an account whose email is in
/// `REISSUE_ADMIN_EMAILS` and that an operator vouched for (the admin CLI
/// created it, or `reissue-admin users vouch` marked it). A sign-up proves
/// nothing about whose the email is, so signing up with a listed address
/// gives nothing.
#[derive(Debug, Clone)]
pub struct AppUsers {
    users: UserStore,
    admin_emails: Arc<HashSet<String>>,
}

impl AppUsers {
    pub(crate) fn new(users: UserStore, admin_emails: HashSet<String>) -> Self {
        Self {
            users,
            admin_emails: Arc::new(admin_emails),
        }
    }
}

impl Authenticator for AppUsers {
    type Credentials = EmailPassword;
    type Claims = UserClaims;

    fn account_key(&self, credentials: &EmailPassword) -> reissue_core::Result<String> {
        self.users.account_key(credentials)
    }

    async fn authenticate(
        &self,
        credentials: EmailPassword,
    ) -> reissue_core::Result<Authenticated<UserClaims>> {
        let mut who = self.users.authenticate(credentials).await?;
        let roles = &who.claims.roles;
        // One more look-up, for listed addresses only.
        if self.admin_emails.contains(&who.claims.email) && !roles.iter().any(|r| r == ADMIN_ROLE) {
            let vouched = match who.user_id.parse() {
                Ok(id) => self.users.find_by_id(id).await?,
                Err(_) => None,
            }
            .is_some_and(|user| user.vouched_at.is_some());
            if vouched {
                who.claims.roles.push(ADMIN_ROLE.to_owned());
            }
        }
        Ok(who)
    }
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

/// The body of `POST /account/password`.
#[derive(Deserialize, utoipa::ToSchema)]
struct PasswordChange {
    /// The password now.
    #[schema(format = Password)]
    current_password: String,
    /// At least 8 characters.
    #[schema(format = Password)]
    new_password: String,
}

/// How recent a login `POST /account/password` needs, seconds.
pub const PASSWORD_CHANGE_MAX_AGE: u64 = 300;

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
        // No roles, whatever the address: see `AppUsers`.
        match self.users.create_user(&email, &password, &[]).await {
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

    /// `POST /account/password` (behind the step-up guard, a login within
    /// [`PASSWORD_CHANGE_MAX_AGE`]): `{"current_password","new_password"}`
    /// → 204, the password changed and every other session of the user
    /// ended (the caller's goes on); 401 `invalid_credentials` for a wrong
    /// current password; 400 for a new one under 8 characters.
    pub async fn change_password(
        &self,
        identity: &Identity<UserClaims>,
        req: &impl HttpRequest,
        body: &[u8],
    ) -> Reply {
        let change: PasswordChange = match json_body(req, body) {
            Ok(change) => change,
            Err(e) => return self.reissue.reply(&e),
        };
        let result = async {
            let id: i64 = identity
                .user_id
                .parse()
                .map_err(|_| reissue_core::Error::InvalidCredentials)?;
            // The current password is checked as a login checks it (the
            // same hash, the same answer for a wrong one).
            let check = EmailPassword::new(identity.claims.email.clone(), change.current_password);
            let who = self.reissue.authenticator().authenticate(check).await?;
            if who.user_id != identity.user_id {
                return Err(reissue_core::Error::InvalidCredentials);
            }
            self.users
                .set_password(id, &change.new_password)
                .await
                .map_err(reissue_core::Error::from)?;
            self.reissue
                .credentials_changed(&identity.user_id, Some(&identity.session_id))
                .await
        }
        .await;
        match result {
            Ok(_) => Reply::no_content(),
            Err(e) => self.reissue.reply(&e),
        }
    }

    /// `POST /admin/users/{id}/logout`: forced logout of every session of a user.
    pub async fn admin_logout(&self, user_id: &str) -> Reply {
        match self.reissue.force_logout(user_id, "admin").await {
            Ok(_) => Reply::no_content(),
            Err(e) => self.reissue.reply(&e),
        }
    }
}
