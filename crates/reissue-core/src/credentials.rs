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
}

impl<C> Authenticated<C> {
    /// A user id with its claims.
    pub fn new(user_id: impl Into<String>, claims: C) -> Self {
        Self {
            user_id: user_id.into(),
            claims,
        }
    }
}

/// Checks login credentials. `reissue-diesel`'s `UserStore` implements it for
/// email and password; an application can implement it for anything else.
///
/// Implementations must answer an unknown account and a wrong secret with the
/// same [`Error::InvalidCredentials`](crate::Error::InvalidCredentials), in
/// the same time, and report an unreachable database as
/// [`Error::Unavailable`](crate::Error::Unavailable).
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
