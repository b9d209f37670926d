//! Login: `UserStore` as reissue's `Authenticator`.

use std::fmt;

use reissue_core::{Authenticated, Authenticator, Error, UserClaims};
use serde::Deserialize;

use crate::UserStore;
use crate::validate::email;

/// The login body: `{"email": "...", "password": "..."}`. Unknown fields are
/// ignored. `Debug` never shows the password.
#[derive(Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct EmailPassword {
    /// The email, as typed; it is normalised before the lookup.
    #[cfg_attr(feature = "openapi", schema(format = Email))]
    pub email: String,
    /// The password.
    #[cfg_attr(feature = "openapi", schema(format = Password))]
    pub password: String,
}

impl EmailPassword {
    /// Credentials from an email and a password.
    pub fn new(email: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for EmailPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailPassword")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// An unknown email and a wrong password both give
/// [`Error::InvalidCredentials`], after the same argon2 work. The user id
/// becomes the tokens' `sub`; the claims carry the email and the roles.
impl Authenticator for UserStore {
    type Credentials = EmailPassword;
    type Claims = UserClaims;

    /// The normalised email; a malformed one is 400 `invalid_request`
    /// before any attempt is counted.
    fn account_key(&self, credentials: &EmailPassword) -> reissue_core::Result<String> {
        email(&credentials.email)
            .map_err(|_| Error::InvalidRequest("the email address is malformed".into()))
    }

    async fn authenticate(
        &self,
        credentials: EmailPassword,
    ) -> reissue_core::Result<Authenticated<UserClaims>> {
        match self
            .check_login(&credentials.email, &credentials.password)
            .await?
        {
            // A password: `amr` ["pwd"] (RFC 8176).
            Some(user) => Ok(Authenticated::new(
                user.id.to_string(),
                UserClaims::new(user.email, user.roles),
            )
            .amr(["pwd"])),
            None => Err(Error::InvalidCredentials),
        }
    }
}
