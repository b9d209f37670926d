//! The one error type of the admin CLI and of the settings it shares.

use std::fmt::Write as _;

/// What went wrong, as one line for the operator. Never holds a password, a
/// token or a URL's credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is unusable; the line starts with its environment variable.
    #[error("{variable}: {reason}")]
    Setting {
        /// The environment variable (its flag is in `--help`).
        variable: &'static str,
        /// Why, in a few words.
        reason: String,
    },
    /// `REDIS_URL` is unset: the apps then keep sessions in their own
    /// memory, which nothing outside them can reach.
    #[error(
        "REDIS_URL is unset: without Redis the apps keep sessions in their own memory, \
         and there is nothing to administer from outside; set REDIS_URL (or --redis-url) \
         to the apps' Redis"
    )]
    NoSharedStore,
    /// No user has this id or email.
    #[error("no user with id or email `{0}`")]
    UnknownUser(String),
    /// The session is not one of the user's live sessions.
    #[error("user {user} has no live session `{sid}`")]
    UnknownSession {
        /// The user, by id.
        user: String,
        /// The session id as given.
        sid: String,
    },
    /// The user database refused the change (email taken, a bad role...).
    #[error("{0}")]
    Refused(String),
    /// The token store failed during an operation.
    #[error("REDIS_URL: {}", chain(.0))]
    Store(#[source] reissue_core::Error),
    /// The user database failed during an operation.
    #[error("DATABASE_URL: {}", chain(.0))]
    Users(#[source] reissue_diesel::UserError),
    /// The password could not be read.
    #[error("password: {0}")]
    Password(String),
}

impl Error {
    pub(crate) fn setting(variable: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Setting {
            variable,
            reason: reason.to_string(),
        }
    }
}

/// An error and its causes on one line: `outer: inner: innermost`.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // fred and diesel often repeat their cause in their own text.
        if !line.contains(&text) {
            let _ = write!(line, ": {text}");
        }
        source = cause.source();
    }
    line.replace(['\n', '\r'], " ")
}
