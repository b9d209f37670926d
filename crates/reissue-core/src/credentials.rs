//! What login checks credentials with: the application's user database.

use std::future::Future;

use serde::de::DeserializeOwned;

use crate::{Claims, Result};

/// A user whose credentials were accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Authenticated<C> {
    /// The user id; becomes the tokens' `sub`.
    pub user_id: String,
    /// The application's claims, carried in every access token of the session.
    pub claims: C,
    /// How the user proved themselves (RFC 8176 method names, e.g.
    /// `["pwd"]`): the access tokens' `amr`. Empty (no `amr`) unless set.
    pub amr: Vec<String>,
}

impl<C> Authenticated<C> {
    /// A user id with its claims.
    pub fn new(user_id: impl Into<String>, claims: C) -> Self {
        Self {
            user_id: user_id.into(),
            claims,
            amr: Vec::new(),
        }
    }

    /// The authentication methods used (RFC 8176), e.g. `["pwd"]` for a
    /// password: the access tokens of the session say so in `amr`.
    #[must_use]
    pub fn amr<S: Into<String>>(mut self, methods: impl IntoIterator<Item = S>) -> Self {
        self.amr = methods.into_iter().map(Into::into).collect();
        self
    }
}

/// Checks login credentials: the application's user database behind
/// `POST /auth/login`. `reissue-diesel`'s `UserStore` implements it for email
/// and password on diesel; an application implements it over its own users
/// (sqlx, an ORM, a directory, a map in memory) and hands it to
/// [`Reissue::builder`](crate::Reissue::builder).
///
/// Implementations must:
/// - answer an unknown account and a wrong secret with the same
///   [`Error::InvalidCredentials`](crate::Error::InvalidCredentials), *in the
///   same time*: never return early for an unknown account, or the answer's
///   time tells who has one. With the `password` feature,
///   `password::PasswordHasher` does that
///   part: pass it the stored hash, or `None` for an unknown account, and it
///   does the same argon2 work either way, on the blocking pool, bounded;
/// - report an unreachable database as
///   [`Error::Unavailable`](crate::Error::Unavailable) (e.g.
///   `.map_err(Error::unavailable)` on the driver's error) and a full
///   password queue as [`Error::Overloaded`](crate::Error::Overloaded) (the
///   hasher's own error, passed on with `?`): both are 503 with
///   `Retry-After`, and neither counts as a failed attempt.
///
/// A user store in a `HashMap`, timing-safe (`examples/sqlx-app` does the
/// same over a Postgres table with sqlx):
///
/// ```
/// # #[cfg(feature = "password")]
/// # mod example {
/// use std::collections::HashMap;
///
/// use reissue_core::password::PasswordHasher;
/// use reissue_core::{Authenticated, Authenticator, Error, Result, UserClaims};
///
/// /// The login body, `{"email": "...", "password": "..."}`.
/// #[derive(serde::Deserialize)]
/// pub struct Login {
///     email: String,
///     password: String,
/// }
///
/// pub struct Users {
///     hasher: PasswordHasher,
///     /// Normalised email → (user id, argon2 PHC string).
///     by_email: HashMap<String, (String, String)>,
/// }
///
/// impl Users {
///     pub async fn sign_up(&mut self, id: &str, email: &str, password: &str) -> Result<()> {
///         let hash = self.hasher.hash(password).await?;
///         self.by_email.insert(email.to_lowercase(), (id.to_owned(), hash));
///         Ok(())
///     }
/// }
///
/// impl Authenticator for Users {
///     type Credentials = Login;
///     type Claims = UserClaims;
///
///     /// Login attempts are counted per normalised email; one that cannot
///     /// be an email is refused with 400 before anything is counted.
///     fn account_key(&self, login: &Login) -> Result<String> {
///         let email = login.email.trim().to_lowercase();
///         match email.split_once('@') {
///             Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.contains('@') => {
///                 Ok(email)
///             }
///             _ => Err(Error::InvalidRequest("the email address is malformed".into())),
///         }
///     }
///
///     async fn authenticate(&self, login: Login) -> Result<Authenticated<UserClaims>> {
///         let email = self.account_key(&login)?;
///         let user = self.by_email.get(&email);
///         // No early return for an unknown email: verifying against `None`
///         // costs what a wrong password costs.
///         let verified = self
///             .hasher
///             .verify(&login.password, user.map(|(_, hash)| hash.as_str()))
///             .await?;
///         match user {
///             // (A store whose hashes may be of older parameters also saves
///             // the new hash of `Verified::Rehashed`; these never are.)
///             Some((id, _)) if verified.is_match() => {
///                 Ok(Authenticated::new(id.clone(), UserClaims::new(email, vec![])))
///             }
///             _ => Err(Error::InvalidCredentials),
///         }
///     }
/// }
///
/// #[tokio::main(flavor = "current_thread")]
/// pub async fn main() -> Result<()> {
///     // Cheap parameters for the example; keep the default (OWASP) in an app.
///     let params = reissue_core::password::Argon2Params::new(64, 1, 1)?;
///     let hasher = PasswordHasher::builder().params(params).build()?;
///     let mut users = Users { hasher, by_email: HashMap::new() };
///     users.sign_up("1", "ada@example.com", "correct horse battery").await?;
///
///     let login = |email: &str, password: &str| Login { email: email.into(), password: password.into() };
///     let ada = users.authenticate(login("Ada@example.com", "correct horse battery")).await?;
///     assert_eq!(ada.user_id, "1");
///     // A wrong password and an unknown email: the same error, after the same work.
///     let wrong = users.authenticate(login("ada@example.com", "wrong horse battery")).await;
///     let unknown = users.authenticate(login("bob@example.com", "correct horse battery")).await;
///     assert!(matches!(wrong, Err(Error::InvalidCredentials)));
///     assert!(matches!(unknown, Err(Error::InvalidCredentials)));
///     Ok(())
/// }
/// # }
/// # #[cfg(feature = "password")]
/// # fn main() -> reissue_core::Result<()> { example::main() }
/// # #[cfg(not(feature = "password"))]
/// # fn main() {}
/// ```
pub trait Authenticator: Send + Sync + 'static {
    /// What the login endpoint's JSON body deserializes into.
    type Credentials: DeserializeOwned + Send + 'static;
    /// The application's claims for the access token.
    type Claims: Claims;

    /// The account the credentials name, normalised (e.g. a lower-cased email):
    /// login attempts are counted per account key (reissue stores only a
    /// digest of it). Credentials that cannot name an account (a malformed
    /// email) are [`Error::InvalidRequest`](crate::Error::InvalidRequest):
    /// refused with 400 before anything is counted.
    fn account_key(&self, credentials: &Self::Credentials) -> Result<String>;

    /// Checks the credentials.
    fn authenticate(
        &self,
        credentials: Self::Credentials,
    ) -> impl Future<Output = Result<Authenticated<Self::Claims>>> + Send;
}
