//! The session model: login, reissue with rotation, logout, forced logout.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::audit::{self, AuditEvent, AuditKind};
use crate::policy::{CountryLookup, Decision, Policy, PolicyContext, Stage, client_ip};
use crate::request::HttpRequest;
use crate::store::{
    ClientMeta, NewSession, RefreshStore, RotateRequest, Rotation, SessionInfo, Successor,
};
use crate::token::now_millis;
use crate::verifier::VerifierInner;
use crate::{
    AuditSink, Authenticator, Config, Error, KeySet, Result, SessionId, TokenCodec, TokenRejection,
    Verifier,
};

/// A token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TokenPair {
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Seconds until the refresh token expires unless used.
    pub refresh_expires_in: u64,
}

struct Inner<A: Authenticator> {
    config: Config,
    verifier: Verifier<A::Claims>,
    store: Arc<dyn RefreshStore>,
    authenticator: A,
    policy: Option<Arc<dyn Policy>>,
    countries: Option<Arc<dyn CountryLookup>>,
    audit: Option<Arc<dyn AuditSink>>,
}

/// Login sessions: issues, rotates and revokes tokens over a
/// [`RefreshStore`]. Cheap to clone; share one per application.
///
/// The `serve_*` methods are the HTTP endpoints of CONTRACT.md as
/// framework-neutral functions ([`HttpRequest`] in, [`Reply`](crate::Reply)
/// out); the adapters mount them.
pub struct Reissue<A: Authenticator> {
    inner: Arc<Inner<A>>,
}

impl<A: Authenticator> Clone for Reissue<A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<A: Authenticator> std::fmt::Debug for Reissue<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reissue")
            .field("config", &self.inner.config)
            .field("store", &self.inner.store)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Reissue`].
#[must_use]
pub struct ReissueBuilder<A: Authenticator> {
    config: Config,
    keys: KeySet,
    store: Arc<dyn RefreshStore>,
    authenticator: A,
    policy: Option<Arc<dyn Policy>>,
    countries: Option<Arc<dyn CountryLookup>>,
    audit: Option<Arc<dyn AuditSink>>,
}

impl<A: Authenticator> std::fmt::Debug for ReissueBuilder<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReissueBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<A: Authenticator> ReissueBuilder<A> {
    /// The address and country policy, consulted at login and reissue.
    pub fn policy(mut self, policy: impl Policy) -> Self {
        self.policy = Some(Arc::new(policy));
        self
    }

    /// Where client countries come from (e.g. [`GeoIp`](crate::policy::GeoIp)).
    pub fn countries(mut self, lookup: Arc<dyn CountryLookup>) -> Self {
        self.countries = Some(lookup);
        self
    }

    /// Where audit events go (besides `tracing`).
    pub fn audit(mut self, sink: impl AuditSink) -> Self {
        self.audit = Some(Arc::new(sink));
        self
    }

    /// Checks the configuration and builds.
    pub fn build(self) -> Result<Reissue<A>> {
        self.config.validate()?;
        let c = &self.config;
        let codec = TokenCodec::new(self.keys, &c.issuer, &c.audience, c.leeway.as_secs());
        let verifier = Verifier::from_inner(
            Arc::new(VerifierInner {
                codec,
                store: Some(self.store.clone()),
                strict: c.strict_revocation,
                realm: c.realm.clone(),
            }),
            c.verified_token_cache,
        );
        Ok(Reissue {
            inner: Arc::new(Inner {
                config: self.config,
                verifier,
                store: self.store,
                authenticator: self.authenticator,
                policy: self.policy,
                countries: self.countries,
                audit: self.audit,
            }),
        })
    }
}

fn secs(ms: u64) -> u64 {
    ms / 1000
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

impl<A: Authenticator> Reissue<A> {
    /// Starts building: settings, keys, the store, and what checks credentials.
    pub fn builder(
        config: Config,
        keys: KeySet,
        store: Arc<dyn RefreshStore>,
        authenticator: A,
    ) -> ReissueBuilder<A> {
        ReissueBuilder {
            config,
            keys,
            store,
            authenticator,
            policy: None,
            countries: None,
            audit: None,
        }
    }

    /// The access-token verifier, for the protected-route middleware.
    pub fn verifier(&self) -> &Verifier<A::Claims> {
        &self.inner.verifier
    }

    /// The credential checker.
    pub fn authenticator(&self) -> &A {
        &self.inner.authenticator
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Renders an error with the configured realm.
    pub fn reply(&self, error: &Error) -> crate::Reply {
        error.reply(&self.inner.config.realm)
    }

    /// The token codec (keys, issuing, verifying).
    pub fn tokens(&self) -> &TokenCodec {
        &self.inner.verifier.inner.codec
    }

    fn emit(&self, event: AuditEvent) {
        audit::emit(self.inner.audit.as_deref(), event);
    }

    /// The client of a request: its address (after the trusted-proxy rule),
    /// country and user agent.
    pub fn client_of(&self, req: &impl HttpRequest) -> ClientMeta {
        let ip = req.peer_addr().map(|peer| {
            let xff: Vec<&[u8]> = req.header_values("x-forwarded-for").collect();
            client_ip(peer, &xff, &self.inner.config.trusted_proxies)
        });
        let ua = req
            .header("user-agent")
            .and_then(|v| std::str::from_utf8(v).ok());
        self.client_at(ip, ua)
    }

    /// Client metadata for an address, with its country looked up.
    pub fn client_at(&self, ip: Option<IpAddr>, user_agent: Option<&str>) -> ClientMeta {
        let country = ip
            .zip(self.inner.countries.as_ref())
            .and_then(|(ip, db)| db.country(ip));
        ClientMeta::new(ip, country, user_agent)
    }

    fn check_policy(
        &self,
        stage: Stage,
        user_id: &str,
        sid: Option<&SessionId>,
        client: &ClientMeta,
        login_country: Option<crate::Country>,
    ) -> Decision {
        let (Some(policy), Some(ip)) = (&self.inner.policy, client.ip) else {
            return Decision::Allow;
        };
        policy.check(&PolicyContext {
            stage,
            user_id,
            session_id: sid,
            ip,
            country: client.country,
            user_agent: client.user_agent.as_deref(),
            login_country,
        })
    }

    /// Acts on a refusal: audit, revoke what the decision (or, at reissue, the
    /// contract) says, and answer 403.
    async fn refuse(
        &self,
        decision: &Decision,
        stage: Stage,
        user_id: &str,
        sid: Option<&SessionId>,
        client: &ClientMeta,
    ) -> Error {
        let rule = decision.rule().unwrap_or("policy");
        let event = |kind| {
            let event = AuditEvent::new(kind)
                .user(user_id)
                .reason(rule)
                .client(client);
            match sid {
                Some(sid) => event.session(sid),
                None => event,
            }
        };
        self.emit(event(AuditKind::PolicyDenied));
        let revoked = match (decision, sid) {
            (Decision::RevokeUser { .. }, _) => {
                self.inner.store.revoke_all(user_id).await.map(|n| n > 0)
            }
            (_, Some(sid))
                if stage == Stage::Reissue
                    || matches!(decision, Decision::RevokeSession { .. }) =>
            {
                self.inner.store.revoke(user_id, sid).await
            }
            _ => Ok(false),
        };
        match revoked {
            Ok(true) => {
                self.emit(event(AuditKind::ForcedLogout));
                Error::AccessDenied
            }
            Ok(false) => Error::AccessDenied,
            Err(e) => e,
        }
    }

    fn mint(
        &self,
        user_id: &str,
        sid: &SessionId,
        claims: &A::Claims,
        s: &Successor,
        now_ms: u64,
    ) -> Result<TokenPair> {
        let c = &self.inner.config;
        let now = secs(now_ms);
        let access_exp = (now + c.access_ttl.as_secs())
            .min(secs(s.absolute_expiry_ms))
            .max(now + 1);
        let access_token =
            self.tokens()
                .issue_access(user_id, sid, claims, now, access_exp - now)?;
        let refresh_exp = secs(s.expires_at_ms);
        let refresh_token = self.tokens().issue_refresh(
            user_id,
            sid,
            s.generation,
            secs(s.rotated_at_ms),
            refresh_exp,
        )?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            token_type: "Bearer",
            expires_in: access_exp - now,
            refresh_expires_in: refresh_exp.saturating_sub(now),
        })
    }

    /// Logs in: checks the lockout, the credentials and the policy, then
    /// creates a session and issues its first token pair.
    pub async fn login(
        &self,
        credentials: A::Credentials,
        client: &ClientMeta,
    ) -> Result<TokenPair> {
        let c = &self.inner.config;
        let store = &self.inner.store;
        let account = self.inner.authenticator.account_key(&credentials);
        let failures = store.login_failures(&account).await?;
        if let Some(f) = failures.filter(|f| f.count >= c.login_max_failures) {
            return Err(Error::TooManyAttempts {
                retry_after: f.retry_after,
            });
        }
        let user = match self.inner.authenticator.authenticate(credentials).await {
            Ok(user) => user,
            Err(Error::InvalidCredentials) => {
                store
                    .record_login_failure(&account, c.login_lockout)
                    .await?;
                let event = AuditEvent::new(AuditKind::LoginFailed)
                    .user(&account)
                    .client(client);
                self.emit(event);
                return Err(Error::InvalidCredentials);
            }
            Err(e) => return Err(e),
        };
        if failures.is_some() {
            store.clear_login_failures(&account).await?;
        }
        let decision = self.check_policy(Stage::Login, &user.user_id, None, client, None);
        if decision != Decision::Allow {
            return Err(self
                .refuse(&decision, Stage::Login, &user.user_id, None, client)
                .await);
        }
        let now_ms = now_millis();
        let sid = SessionId::random();
        let absolute_expiry_ms = now_ms + millis(c.session_max_age);
        let claims = serde_json::to_string(&user.claims)
            .map_err(|e| Error::Internal(format!("claims do not serialize: {e}")))?;
        let session = NewSession {
            user_id: user.user_id.clone(),
            sid: sid.clone(),
            now_ms,
            absolute_expiry_ms,
            idle_ttl: c.refresh_ttl,
            max_sessions: c.max_sessions_per_user,
            client: client.clone(),
            claims,
        };
        let evicted = store.create(&session).await?;
        for old in evicted {
            self.emit(
                AuditEvent::new(AuditKind::ForcedLogout)
                    .user(&user.user_id)
                    .session(&old)
                    .reason("max_sessions"),
            );
        }
        let first = Successor {
            generation: 1,
            rotated_at_ms: now_ms,
            expires_at_ms: crate::store::idle_expiry(now_ms, c.refresh_ttl, absolute_expiry_ms),
            absolute_expiry_ms,
            claims: String::new(),
            login_country: client.country,
        };
        let pair = self.mint(&user.user_id, &sid, &user.claims, &first, now_ms)?;
        let event = AuditEvent::new(AuditKind::Login)
            .user(&user.user_id)
            .session(&sid)
            .client(client);
        self.emit(event);
        Ok(pair)
    }

    /// Exchanges a refresh token for a new pair, spending it. See CONTRACT.md
    /// "Rotation, reuse and races" for the grace window and reuse detection.
    pub async fn reissue(&self, refresh_token: &str, client: &ClientMeta) -> Result<TokenPair> {
        let c = &self.inner.config;
        let rt = self.tokens().verify_refresh(refresh_token)?;
        let now_ms = now_millis();
        let request = RotateRequest {
            user_id: &rt.sub,
            sid: &rt.sid,
            generation: rt.generation,
            now_ms,
            grace: c.reuse_grace,
            idle_ttl: c.refresh_ttl,
            client,
        };
        let (successor, rotated) = match self.inner.store.rotate(&request).await? {
            Rotation::Rotated(s) => (s, true),
            Rotation::Replayed(s) => (s, false),
            Rotation::Reused => {
                let event = AuditEvent::new(AuditKind::ReuseDetected)
                    .user(&rt.sub)
                    .session(&rt.sid)
                    .client(client);
                self.emit(event.reason(format!("generation {} presented", rt.generation)));
                return Err(Error::InvalidToken(TokenRejection::ReuseDetected));
            }
            Rotation::NotFound => return Err(Error::InvalidToken(TokenRejection::SessionRevoked)),
        };
        let decision = self.check_policy(
            Stage::Reissue,
            &rt.sub,
            Some(&rt.sid),
            client,
            successor.login_country,
        );
        if decision != Decision::Allow {
            return Err(self
                .refuse(&decision, Stage::Reissue, &rt.sub, Some(&rt.sid), client)
                .await);
        }
        let claims: A::Claims = serde_json::from_str(&successor.claims)
            .map_err(|e| Error::Internal(format!("stored claims do not deserialize: {e}")))?;
        let pair = self.mint(&rt.sub, &rt.sid, &claims, &successor, now_ms)?;
        if rotated {
            let event = AuditEvent::new(AuditKind::Reissue)
                .user(&rt.sub)
                .session(&rt.sid)
                .client(client);
            self.emit(event);
        }
        Ok(pair)
    }

    /// Ends one session (a user's logout). Ending an ended session is fine.
    pub async fn logout(&self, user_id: &str, sid: &SessionId) -> Result<()> {
        if self.inner.store.revoke(user_id, sid).await? {
            self.emit(
                AuditEvent::new(AuditKind::Logout)
                    .user(user_id)
                    .session(sid),
            );
        }
        Ok(())
    }

    /// Ends every session of a user, at the user's request.
    pub async fn logout_all(&self, user_id: &str) -> Result<usize> {
        let n = self.inner.store.revoke_all(user_id).await?;
        self.emit(
            AuditEvent::new(AuditKind::LogoutAll)
                .user(user_id)
                .reason(format!("{n} sessions")),
        );
        Ok(n)
    }

    /// Forced logout (the seed's "delete the refresh token"): ends every
    /// session of a user, e.g. when a token was stolen. `reason` goes to the audit trail.
    pub async fn force_logout(&self, user_id: &str, reason: &str) -> Result<usize> {
        let n = self.inner.store.revoke_all(user_id).await?;
        self.emit(
            AuditEvent::new(AuditKind::ForcedLogout)
                .user(user_id)
                .reason(reason),
        );
        Ok(n)
    }

    /// Ends one session of a user; `false` when it is not one of their live sessions.
    pub async fn revoke_session(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        let revoked = self.inner.store.revoke(user_id, sid).await?;
        if revoked {
            self.emit(
                AuditEvent::new(AuditKind::Logout)
                    .user(user_id)
                    .session(sid),
            );
        }
        Ok(revoked)
    }

    /// A user's live sessions, oldest first.
    pub async fn sessions(&self, user_id: &str) -> Result<Vec<SessionInfo>> {
        self.inner.store.list(user_id).await
    }

    /// Whether a session is live.
    pub async fn is_live(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        self.inner.store.is_live(user_id, sid).await
    }
}
