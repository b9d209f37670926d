//! Audit events: what happened to which session, for the application's trail.

use std::fmt;
use std::net::IpAddr;

use crate::{Country, SessionId};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditKind {
    /// A session was created.
    Login,
    /// Credentials were refused (the event names the account by digest).
    LoginFailed,
    /// A login attempt was refused, uncounted and unchecked, because its
    /// account (from its network, or from all) reached the limit.
    LoginThrottled,
    /// A user proved themselves again to a live session (step-up): the
    /// session rotated with a fresh `auth_time`.
    Reauthenticated,
    /// A user's credentials changed, and their other sessions were ended.
    CredentialsChanged,
    /// A refresh token was rotated.
    Reissue,
    /// A spent refresh token came back within the grace window and got the
    /// same successor: a second tab or a retry, or a thief racing the client.
    ReissueReplayed,
    /// A spent refresh token came back after the grace window; the session was revoked.
    ReuseDetected,
    /// One session was ended by its user.
    Logout,
    /// Every session of a user was ended by that user.
    LogoutAll,
    /// Sessions were ended by the application or a policy, not by the user.
    ForcedLogout,
    /// The address or country policy refused a login or a reissue.
    PolicyDenied,
    /// A request on a DPoP-bound session (or a login where binding is
    /// required) came without a valid proof by its key; nothing changed.
    DpopRefused,
}

impl AuditKind {
    /// The snake_case name, as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::LoginFailed => "login_failed",
            Self::LoginThrottled => "login_throttled",
            Self::Reauthenticated => "reauthenticated",
            Self::CredentialsChanged => "credentials_changed",
            Self::Reissue => "reissue",
            Self::ReissueReplayed => "reissue_replayed",
            Self::ReuseDetected => "reuse_detected",
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::ForcedLogout => "forced_logout",
            Self::PolicyDenied => "policy_denied",
            Self::DpopRefused => "dpop_refused",
        }
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One audit event. Never carries a token or a password.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEvent {
    /// What happened.
    pub kind: AuditKind,
    /// The user, when known (for a failed or throttled login: a digest of the
    /// account tried, never the typed text).
    pub user_id: Option<String>,
    /// The session, when one is concerned.
    pub session_id: Option<SessionId>,
    /// The client address, when the event comes from a request.
    pub ip: Option<IpAddr>,
    /// The client's country, when known.
    pub country: Option<Country>,
    /// The policy rule or reason behind the event, e.g. `country_not_allowed`.
    pub reason: Option<String>,
}

impl AuditEvent {
    pub(crate) fn new(kind: AuditKind) -> Self {
        Self {
            kind,
            user_id: None,
            session_id: None,
            ip: None,
            country: None,
            reason: None,
        }
    }
    pub(crate) fn user(mut self, user_id: &str) -> Self {
        self.user_id = Some(user_id.to_owned());
        self
    }
    pub(crate) fn session(mut self, sid: &SessionId) -> Self {
        self.session_id = Some(sid.clone());
        self
    }
    pub(crate) fn client(mut self, client: &crate::store::ClientMeta) -> Self {
        self.ip = client.ip;
        self.country = client.country;
        self
    }
    pub(crate) fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// Receives audit events. Every event also goes to `tracing` (target
/// `reissue::audit`) whether or not a sink is set.
///
/// `record` is called on the request path: hand slow work to a channel.
pub trait AuditSink: Send + Sync + fmt::Debug + 'static {
    /// Records one event.
    fn record(&self, event: &AuditEvent);
}

pub(crate) fn emit(sink: Option<&dyn AuditSink>, event: AuditEvent) {
    let level_warn = matches!(
        event.kind,
        AuditKind::ReuseDetected
            | AuditKind::PolicyDenied
            | AuditKind::ForcedLogout
            | AuditKind::DpopRefused
    );
    macro_rules! log {
        ($lvl:ident) => {
            tracing::$lvl!(
                target: "reissue::audit",
                event = event.kind.as_str(),
                user = event.user_id.as_deref(),
                session = event.session_id.as_ref().map(SessionId::as_str),
                ip = event.ip.map(tracing::field::display),
                country = event.country.as_ref().map(Country::as_str),
                reason = event.reason.as_deref(),
            )
        };
    }
    if level_warn {
        log!(warn);
    } else {
        log!(info);
    }
    if let Some(sink) = sink {
        sink.record(&event);
    }
}

/// Names the session (and its user) on the current operation's span; a
/// no-op outside one.
pub(crate) fn record_session(user_id: &str, sid: &crate::SessionId) {
    let span = tracing::Span::current();
    span.record("session_id", sid.as_str());
    span.record("user_id", user_id);
}
