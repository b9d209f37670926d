//! Counters and histograms through the `metrics` facade, emitted where the
//! session decisions are made, so that every adapter reports the same numbers.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use crate::store::{
    Admission, AttemptEnd, Created, LoginAttempt, LoginThrottle, NewSession, RenewRequest,
    RotateRequest, Rotation, SessionInfo, SessionStore, Successor,
};
use crate::{Error, Result, SessionId, TokenRejection};

/// A recorder the metrics of one [`Reissue`](crate::Reissue) go to, set with
/// [`ReissueBuilder::metrics`](crate::ReissueBuilder::metrics); without one
/// they go to the `metrics` facade's global recorder
/// (`metrics::set_global_recorder`). The application picks the exporter.
///
/// | name | labels | what |
/// |---|---|---|
/// | `reissue_logins_total` | `outcome`: `success`, `invalid_credentials`, `throttled`, `denied`, `invalid_request`, `unavailable`, `overloaded` (the password checks' queue was full: 503), `error` | login attempts |
/// | `reissue_login_throttled_total` | | attempts refused by the throttle, unchecked |
/// | `reissue_reissues_total` | `outcome`: `rotated`, `grace_replay`, `reuse_detected`, `session_ended`, `invalid_token`, `denied`, `unavailable`, `error` | refresh token exchanges |
/// | `reissue_revocations_total` | `reason`: `logout`, `logout_all`, `forced`, `reuse_detected`, `max_sessions`, `policy` | sessions ended |
/// | `reissue_revocations_unconfirmed_total` | `op`: `revoke`, `revoke_all`, `reuse` | revocations in effect on the Redis primary that no replica confirmed within the replica wait (emitted by the Redis store, to the global recorder) |
/// | `reissue_store_errors_total` | `op` | store calls of the session operations that failed |
/// | `reissue_store_duration_seconds` | `op` | their latency (histogram) |
///
/// The protected-route middleware emits nothing: verifying an access token
/// costs the same with metrics on.
pub type SharedRecorder = Arc<dyn metrics::Recorder + Send + Sync>;

/// Where this instance's metrics go: its own recorder, or the global one.
#[derive(Clone, Default)]
pub(crate) struct Metrics {
    recorder: Option<SharedRecorder>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("own_recorder", &self.recorder.is_some())
            .finish()
    }
}

impl Metrics {
    pub(crate) fn new(recorder: Option<SharedRecorder>) -> Self {
        Self { recorder }
    }

    fn with(&self, f: impl FnOnce()) {
        match &self.recorder {
            Some(r) => metrics::with_local_recorder(&**r, f),
            None => f(),
        }
    }

    pub(crate) fn login<T>(&self, result: &Result<T>) {
        let outcome = match result {
            Ok(_) => "success",
            Err(Error::InvalidCredentials) => "invalid_credentials",
            Err(Error::TooManyAttempts { .. }) => "throttled",
            Err(Error::AccessDenied) => "denied",
            Err(Error::InvalidRequest(_)) => "invalid_request",
            Err(Error::InvalidDpopProof { .. }) => "invalid_dpop_proof",
            Err(Error::Unavailable(_)) => "unavailable",
            Err(Error::Overloaded { .. }) => "overloaded",
            Err(_) => "error",
        };
        self.with(|| {
            metrics::counter!("reissue_logins_total", "outcome" => outcome).increment(1);
            if outcome == "throttled" {
                metrics::counter!("reissue_login_throttled_total").increment(1);
            }
        });
    }

    /// `replayed`: whether a success was a grace-window replay.
    pub(crate) fn reissue<T>(&self, result: &Result<(T, bool)>) {
        let outcome = match result {
            Ok((_, false)) => "rotated",
            Ok((_, true)) => "grace_replay",
            Err(Error::InvalidToken(TokenRejection::ReuseDetected)) => "reuse_detected",
            Err(Error::InvalidToken(TokenRejection::SessionRevoked)) => "session_ended",
            Err(Error::InvalidToken(_)) => "invalid_token",
            Err(Error::InvalidDpopProof { .. }) => "invalid_dpop_proof",
            Err(Error::AccessDenied) => "denied",
            Err(Error::Unavailable(_)) => "unavailable",
            Err(_) => "error",
        };
        self.with(|| {
            metrics::counter!("reissue_reissues_total", "outcome" => outcome).increment(1);
        });
    }

    pub(crate) fn revoked(&self, reason: &'static str, sessions: usize) {
        if sessions > 0 {
            self.with(|| {
                metrics::counter!("reissue_revocations_total", "reason" => reason)
                    .increment(sessions as u64);
            });
        }
    }

    fn store_call<T>(&self, op: &'static str, started: Instant, result: &Result<T>) {
        let elapsed = started.elapsed();
        self.with(|| {
            metrics::histogram!("reissue_store_duration_seconds", "op" => op).record(elapsed);
            if result.is_err() {
                metrics::counter!("reissue_store_errors_total", "op" => op).increment(1);
            }
        });
    }
}

/// A store capability as the session operations see it: each call timed,
/// each failure counted. The verifier keeps the bare store, so the
/// per-request path (strict revocation's liveness check included) pays
/// nothing.
#[derive(Debug)]
pub(crate) struct Metered<S: ?Sized> {
    pub(crate) inner: Arc<S>,
    pub(crate) metrics: Metrics,
}

macro_rules! timed {
    ($self:ident, $op:literal, $call:expr) => {{
        let started = Instant::now();
        let result = $call.await;
        $self.metrics.store_call($op, started, &result);
        result
    }};
}

#[async_trait]
impl SessionStore for Metered<dyn SessionStore> {
    async fn create(&self, session: &NewSession) -> Result<Created> {
        timed!(self, "create", self.inner.create(session))
    }

    async fn rotate(&self, request: &RotateRequest<'_>) -> Result<Rotation> {
        timed!(self, "rotate", self.inner.rotate(request))
    }

    async fn renew(&self, request: &RenewRequest<'_>) -> Result<Option<Successor>> {
        timed!(self, "renew", self.inner.renew(request))
    }

    async fn revoke(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        timed!(self, "revoke", self.inner.revoke(user_id, sid))
    }

    async fn revoke_all(&self, user_id: &str) -> Result<Vec<SessionId>> {
        timed!(self, "revoke_all", self.inner.revoke_all(user_id))
    }

    async fn list(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        timed!(self, "list", self.inner.list(user_id))
    }

    async fn is_live(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        timed!(self, "is_live", self.inner.is_live(user_id, sid))
    }

    async fn are_live(&self, sessions: &[(&str, &SessionId)]) -> Result<Vec<bool>> {
        timed!(self, "are_live", self.inner.are_live(sessions))
    }
}

#[async_trait]
impl LoginThrottle for Metered<dyn LoginThrottle> {
    async fn begin_login(&self, attempt: &LoginAttempt<'_>) -> Result<Admission> {
        timed!(self, "begin_login", self.inner.begin_login(attempt))
    }

    async fn end_login(&self, attempt: &LoginAttempt<'_>, end: AttemptEnd) -> Result<()> {
        timed!(self, "end_login", self.inner.end_login(attempt, end))
    }
}
