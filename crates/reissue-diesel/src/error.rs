//! The one error type of the user store.

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in a [`UserStore`](crate::UserStore) call.
///
/// Login failures are not errors of this type: the
/// [`Authenticator`](reissue_core::Authenticator) implementation answers an
/// unknown email and a wrong password with the same
/// [`reissue_core::Error::InvalidCredentials`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    /// The email address is malformed: not exactly one `@`, an empty local
    /// part or domain, a domain without a dot, whitespace or control
    /// characters, or longer than 254 bytes.
    #[error("the email address is not valid")]
    InvalidEmail,
    /// The password is unacceptable; the text says why.
    #[error("{0}")]
    InvalidPassword(&'static str),
    /// A role is unacceptable; the text says why.
    #[error("{0}")]
    InvalidRole(&'static str),
    /// Another user already has this email (compared after normalisation).
    #[error("an account with this email address already exists")]
    EmailTaken,
    /// No user has this id.
    #[error("no such user")]
    NotFound,
    /// Too many password hashes are waiting (the bound of
    /// [`UserStoreBuilder::hash_queue`](crate::UserStoreBuilder::hash_queue)):
    /// refused at once rather than after a wait without end. Becomes
    /// [`reissue_core::Error::Overloaded`]: 503 with `Retry-After`.
    #[error("too many password hashes are waiting; retry after {retry_after} s")]
    Overloaded {
        /// Seconds after which a retry is likely to be admitted.
        retry_after: u64,
    },
    /// The database is unreachable, timing out, or failed the query.
    #[error("the user database is unavailable")]
    Unavailable(#[source] BoxError),
    /// The store is misconfigured: a bad URL, a missing directory, bad
    /// argon2 parameters. Raised when connecting, never per request.
    #[error("user store configuration error: {0}")]
    Config(String),
}

impl UserError {
    pub(crate) fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::Unavailable(source.into())
    }
}

impl From<diesel::result::Error> for UserError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Self::EmailTaken,
            Error::NotFound => Self::NotFound,
            other => Self::unavailable(other),
        }
    }
}

/// For handlers that answer with reissue's error type. Applications usually
/// answer [`UserError::EmailTaken`] with their own 409 before this applies;
/// here it falls back to a 400 `invalid_request`.
impl From<UserError> for reissue_core::Error {
    fn from(e: UserError) -> Self {
        match e {
            UserError::InvalidEmail => {
                Self::InvalidRequest("the email address is not valid".into())
            }
            UserError::InvalidPassword(why) | UserError::InvalidRole(why) => {
                Self::InvalidRequest(why.into())
            }
            UserError::EmailTaken => {
                Self::InvalidRequest("an account with this email address already exists".into())
            }
            UserError::NotFound => Self::InvalidRequest("no such user".into()),
            UserError::Overloaded { retry_after } => Self::Overloaded { retry_after },
            UserError::Unavailable(source) => Self::unavailable(source),
            UserError::Config(why) => Self::Config(why),
        }
    }
}
