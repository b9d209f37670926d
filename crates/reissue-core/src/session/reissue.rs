//! The session model: login, reissue with rotation, logout, forced logout.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use super::throttle::Attempt;
use crate::audit::{self, AuditEvent, AuditKind};
use crate::client::client_ip;
use crate::clock::{Clock, now_millis};
use crate::dpop::{self, DpopMode};
use crate::metering::{Metered, Metrics, SharedRecorder};
use crate::policy::{CountryLookup, Decision, Policy, PolicyContext, Stage};
use crate::store::{
    Admission, ClientMeta, LoginThrottle, NewSession, ProofReplay, RefreshStore, RenewRequest,
    Retention, RotateRequest, Rotation, SessionInfo, SessionStore, Successor,
};
use crate::verification::live_batch::LiveChecks;
use crate::verification::verifier::VerifierInner;
use crate::{
    AuditSink, Authentication, Authenticator, Config, Confirmation, DpopProof, Error, KeySet,
    ProofRejection, Result, RevocationMode, Revocations, SessionId, TokenCodec, TokenRejection,
    Verifier,
};

/// A token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct TokenPair {
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
    /// `Bearer`, or `DPoP` for a session bound to a DPoP key (RFC 9449 §5).
    #[cfg_attr(feature = "openapi", schema(example = "Bearer"))]
    pub token_type: &'static str,
    /// Seconds until the access token expires: its own lifetime, jittered
    /// ([`Config::access_ttl_jitter`]) and cut at the session's end.
    pub expires_in: u64,
    /// Seconds until the refresh token expires unless used, from when the
    /// store issued it (its `exp - iat`: a replay gets
    /// the same token and the same figure).
    pub refresh_expires_in: u64,
    /// At login: the device token to send back in the `Reissue-Device`
    /// header at the next login, which then cannot be throttled by attempts
    /// from elsewhere ([`Config::device_token_ttl`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
}

struct Inner<A: Authenticator> {
    config: Config,
    verifier: Verifier<A::Claims>,
    sessions: Arc<dyn SessionStore>,
    throttle: Arc<dyn LoginThrottle>,
    proofs: Arc<dyn ProofReplay>,
    authenticator: A,
    policy: Option<Arc<dyn Policy>>,
    countries: Option<Arc<dyn CountryLookup>>,
    audit: Option<Arc<dyn AuditSink>>,
    metrics: Metrics,
    clock: Clock,
    warned_no_peer: AtomicBool,
    /// Whether the claims type names its fields (checked at build).
    claims_named: bool,
}

/// Login sessions: issues, rotates and revokes tokens over a
/// [`RefreshStore`]. Cheap to clone; share one per application.
///
/// The `serve_*` methods are the HTTP endpoints of CONTRACT.md as
/// framework-neutral functions ([`HttpRequest`](crate::HttpRequest) in, [`Reply`](crate::Reply)
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
            .field("sessions", &self.inner.sessions)
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
    sessions: Option<Arc<dyn SessionStore>>,
    authenticator: A,
    policy: Option<Arc<dyn Policy>>,
    countries: Option<Arc<dyn CountryLookup>>,
    audit: Option<Arc<dyn AuditSink>>,
    recorder: Option<SharedRecorder>,
    clock: Option<Clock>,
}

impl<A: Authenticator> std::fmt::Debug for ReissueBuilder<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReissueBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<A: Authenticator> ReissueBuilder<A> {
    /// Sessions kept in `sessions` instead of the store given to
    /// [`Reissue::builder`], which keeps the login throttle and the
    /// revocation feed: for a wrapper that changes the session operations
    /// only (adds a cache, counts, injects faults in a test) without
    /// forwarding the other capabilities.
    pub fn sessions(mut self, sessions: Arc<dyn SessionStore>) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// The address and country policy, consulted at login and reissue.
    pub fn policy(mut self, policy: impl Policy) -> Self {
        self.policy = Some(Arc::new(policy));
        self
    }

    /// Where client countries come from (e.g. [`GeoIp`], feature `geoip`).
    #[cfg_attr(feature = "geoip", doc = "", doc = "[`GeoIp`]: crate::policy::GeoIp")]
    #[cfg_attr(
        not(feature = "geoip"),
        doc = "",
        doc = "[`GeoIp`]: https://docs.rs/reissue-core/0.1.0/reissue_core/policy/struct.GeoIp.html"
    )]
    pub fn countries(mut self, lookup: Arc<dyn CountryLookup>) -> Self {
        self.countries = Some(lookup);
        self
    }

    /// Where audit events go (besides `tracing`).
    pub fn audit(mut self, sink: impl AuditSink) -> Self {
        self.audit = Some(Arc::new(sink));
        self
    }

    /// The recorder this instance's metrics go to (see [`SharedRecorder`]
    /// for what is counted);
    /// by default the `metrics` facade's global recorder. One recorder per
    /// instance lets an application (or a test) run several side by side.
    pub fn metrics(mut self, recorder: SharedRecorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// The clock access tokens are stamped with, Unix milliseconds (default
    /// the system clock). For tests that give instances skewed clocks: the
    /// session rules never depend on it, since the store keeps its own time.
    pub fn clock(mut self, now_ms: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(now_ms));
        self
    }

    /// Checks the configuration and builds. In instant revocation mode this
    /// starts following the store's revocation feed, so it must run inside a
    /// Tokio runtime when the store is Redis.
    pub fn build(self) -> Result<Reissue<A>> {
        self.config.validate()?;
        // An application claim named like a registered one would give the
        // token two members of that name: refused here, or at each mint for
        // a claims type that names no fields.
        let claims_named = crate::tokens::reserved::check_type::<A::Claims>()?;
        let c = &self.config;
        if c.dpop.mode != DpopMode::Off
            && c.dpop.public_origin.is_none()
            && !c.trusted_proxies.is_empty()
        {
            tracing::warn!(
                "DPoP proofs are checked against the Host header, which the trusted proxies may \
                 rewrite: set Config::public_origin (REISSUE_PUBLIC_ORIGIN) to the origin \
                 clients address"
            );
        }
        let sessions: Arc<dyn SessionStore> = self.sessions.unwrap_or_else(|| self.store.clone());
        // Access tokens of a session die at most access_ttl (+ leeway on both
        // clocks) after its end: that long the revocation is worth remembering.
        let keep = c.access_ttl + c.leeway * 2;
        self.store.retain(Retention::new(keep));
        let revocations = match c.revocation {
            RevocationMode::Instant => {
                let revocations = Arc::new(Revocations::new(keep));
                self.store.follow_revocations(revocations.clone())?;
                Some(revocations)
            }
            // Strict mode follows the feed under a lease, and answers from
            // it while the lease holds; otherwise it asks the store, and
            // remembers the sessions it has seen end (here, or in the
            // store's answer).
            RevocationMode::Strict => {
                let revocations = Arc::new(Revocations::new(keep).with_lease(c.strict_lease));
                self.store.follow_revocations(revocations.clone())?;
                Some(revocations)
            }
            RevocationMode::Stateless => None,
        };
        let codec = TokenCodec::new(self.keys, &c.issuer, &c.audience, c.leeway.as_secs())
            .client_id(c.client_id_or_audience());
        let verifier = Verifier::from_inner(
            Arc::new(VerifierInner {
                codec,
                store: Some(LiveChecks::new(sessions.clone())),
                mode: c.revocation,
                revocations,
                fail_closed_while_unsure: c.fail_closed_while_unsure,
                realm: c.realm.as_str().into(),
            }),
            c.verified_token_cache,
        );
        let metrics = Metrics::new(self.recorder);
        Ok(Reissue {
            inner: Arc::new(Inner {
                config: self.config,
                verifier,
                // Timed and counted for the session operations only; the
                // verifier above keeps the bare store.
                sessions: Arc::new(Metered {
                    inner: sessions,
                    metrics: metrics.clone(),
                }),
                throttle: Arc::new(Metered {
                    inner: self.store.clone() as Arc<dyn LoginThrottle>,
                    metrics: metrics.clone(),
                }),
                proofs: self.store as Arc<dyn ProofReplay>,
                metrics,
                authenticator: self.authenticator,
                policy: self.policy,
                countries: self.countries,
                audit: self.audit,
                clock: self.clock.unwrap_or_else(|| Arc::new(now_millis)),
                warned_no_peer: AtomicBool::new(false),
                claims_named,
            }),
        })
    }
}

fn secs(ms: u64) -> u64 {
    ms / 1000
}

impl<A: Authenticator> Reissue<A> {
    /// Starts building: settings, keys, the store, and what checks credentials.
    ///
    /// ```
    /// # use reissue_core::{Authenticated, Authenticator, Error, Result, UserClaims};
    /// # #[derive(serde::Deserialize)]
    /// # struct Login { email: String, password: String }
    /// # struct Users;
    /// # impl Authenticator for Users {
    /// #     type Credentials = Login;
    /// #     type Claims = UserClaims;
    /// #     fn account_key(&self, login: &Login) -> Result<String> { Ok(login.email.to_lowercase()) }
    /// #     async fn authenticate(&self, _: Login) -> Result<Authenticated<UserClaims>> {
    /// #         Err(Error::InvalidCredentials)
    /// #     }
    /// # }
    /// use std::sync::Arc;
    ///
    /// use reissue_core::store::MemoryStore;
    /// use reissue_core::{Algorithm, Config, Key, KeySet, Reissue, RevocationMode};
    ///
    /// # fn main() -> Result<(), reissue_core::Error> {
    /// let key = Key::hmac("k1", Algorithm::HS256, b"a secret of at least thirty-two bytes")?;
    /// let config = Config::new("https://auth.example.com", "my-api")
    ///     .revocation(RevocationMode::Instant);
    /// let reissue = Reissue::builder(config, KeySet::new(key)?, Arc::new(MemoryStore::new()), Users)
    ///     .build()?;
    /// // What the layer or middleware verifies access tokens with:
    /// let verifier = reissue.verifier().clone();
    /// assert!(verifier.verify("not a token").is_err());
    /// # Ok(())
    /// # }
    /// ```
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
            sessions: None,
            authenticator,
            policy: None,
            countries: None,
            audit: None,
            recorder: None,
            clock: None,
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

    /// The client of a request from what its HTTP layer read: the socket
    /// peer, the `X-Forwarded-For` values (applied by the trusted-proxy
    /// rule), and the `User-Agent`.
    pub(crate) fn client_from(
        &self,
        peer: Option<IpAddr>,
        forwarded_for: &[&[u8]],
        user_agent: Option<&str>,
    ) -> ClientMeta {
        let ip =
            peer.map(|peer| client_ip(peer, forwarded_for, &self.inner.config.trusted_proxies));
        if ip.is_none()
            && self.inner.policy.is_some()
            && !self.inner.warned_no_peer.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "a request reached reissue without a peer address (axum without ConnectInfo, or a \
                 Unix socket): with an address policy configured, logins and reissues are refused \
                 unless Config::allow_unknown_client_address(true)"
            );
        }
        self.client_at(ip, user_agent)
    }

    /// Client metadata for an address, with its country looked up.
    pub fn client_at(&self, ip: Option<IpAddr>, user_agent: Option<&str>) -> ClientMeta {
        let country = ip
            .zip(self.inner.countries.as_ref())
            .and_then(|(ip, db)| db.country(ip));
        ClientMeta::new(ip, country, user_agent)
    }

    /// With a policy configured, a client whose address is unknown is refused
    /// (before anything is counted or rotated) unless the application opted out.
    fn check_address_known(&self, stage: Stage, client: &ClientMeta) -> Result<()> {
        if client.ip.is_some()
            || self.inner.policy.is_none()
            || self.inner.config.allow_unknown_client_address
        {
            return Ok(());
        }
        self.emit(
            AuditEvent::new(AuditKind::PolicyDenied)
                .reason(format!("unknown_client_address at {stage:?}").to_lowercase()),
        );
        Err(Error::AccessDenied)
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
            // No policy, or an unknown address the application let through
            // (check_address_known refused it otherwise).
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
            // at login the user is not proven yet: nothing is ended for them
            _ if stage == Stage::Login => Ok(0),
            (Decision::RevokeUser { .. }, _) => self.end_all(user_id).await.map(|n| n.len()),
            (_, Some(sid))
                if stage == Stage::Reissue
                    || matches!(decision, Decision::RevokeSession { .. }) =>
            {
                self.end_session(user_id, sid).await.map(usize::from)
            }
            _ => Ok(0),
        };
        if let Ok(n) = revoked {
            self.inner.metrics.revoked("policy", n);
        }
        let revoked = revoked.map(|n| n > 0);
        match revoked {
            Ok(true) => {
                self.emit(event(AuditKind::ForcedLogout));
                Error::AccessDenied
            }
            Ok(false) => Error::AccessDenied,
            Err(e) => e,
        }
    }

    /// Refuses a request on a session without a valid proof by the key it
    /// is bound to (`bound`, its `cnf.jkt`; an unbound session needs none):
    /// 401 `invalid_dpop_proof` and an audit event, and nothing else
    /// happens. Called before anything is spent, rotated or revoked. A valid
    /// proof's `jti` is remembered, so that it passes once.
    pub(crate) async fn check_proof(
        &self,
        bound: Option<&str>,
        proof: Option<&DpopProof<'_>>,
        user_id: &str,
        sid: &SessionId,
        client: &ClientMeta,
    ) -> Result<()> {
        let Some(jkt) = bound else {
            return Ok(());
        };
        let d = &self.inner.config.dpop;
        let why = match proof.map(|p| dpop::verify(p, d, secs((self.inner.clock)()))) {
            None => ProofRejection::Missing,
            Some(Err(why)) => why,
            Some(Ok(v)) if v.jkt != jkt => ProofRejection::WrongKey,
            Some(Ok(v)) => {
                if self
                    .inner
                    .proofs
                    .first_use(user_id, &v.replay_key, d.replay_ttl())
                    .await?
                {
                    return Ok(());
                }
                ProofRejection::Replayed
            }
        };
        Err(self.refuse_proof(why, false, Some(user_id), Some(sid), client))
    }

    /// The audit event and the error of a refused proof.
    fn refuse_proof(
        &self,
        why: ProofRejection,
        login: bool,
        user_id: Option<&str>,
        sid: Option<&SessionId>,
        client: &ClientMeta,
    ) -> Error {
        let mut event = AuditEvent::new(AuditKind::DpopRefused)
            .client(client)
            .reason(format!("{why:?}").to_lowercase());
        if let Some(user_id) = user_id {
            event = event.user(user_id);
        }
        if let Some(sid) = sid {
            event = event.session(sid);
        }
        self.emit(event);
        Error::InvalidDpopProof {
            why,
            algorithms: self.inner.config.dpop.algorithms,
            login,
        }
    }

    /// The lifetime of one access token, seconds: the configured one varied
    /// at random by up to the jitter fraction either way, at least 1 s.
    fn access_lifetime(&self) -> u64 {
        let c = &self.inner.config;
        let ttl = c.access_ttl.as_secs_f64();
        let jitter = if c.access_ttl_jitter > 0.0 {
            ttl * c.access_ttl_jitter * rand::random_range(-1.0..=1.0)
        } else {
            0.0
        };
        ((ttl + jitter).round() as u64).max(1)
    }

    /// The token pair of a session's state `s`: a fresh access token and the
    /// refresh token of `s`'s generation. The refresh token carries `claims`
    /// and `auth` on, so the next rotation (or a replay, on any instance)
    /// mints the same from it.
    pub(crate) fn mint(
        &self,
        user_id: &str,
        sid: &SessionId,
        claims: &A::Claims,
        auth: &Authentication,
        s: &Successor,
    ) -> Result<TokenPair> {
        if !self.inner.claims_named {
            crate::tokens::reserved::check_members(claims)?;
        }
        let now = secs((self.inner.clock)());
        let access_exp = (now + self.access_lifetime())
            .min(secs(s.absolute_expiry_ms))
            .max(now + 1);
        let access_token =
            self.tokens()
                .issue_access_with(user_id, sid, claims, auth, now, access_exp - now)?;
        // The refresh token's times are the store's: a replay on any instance
        // re-mints the same token.
        let (refresh_iat, refresh_exp) = (secs(s.rotated_at_ms), secs(s.expires_at_ms));
        let refresh_token = self.tokens().issue_refresh_with(
            user_id,
            sid,
            s.generation,
            refresh_iat,
            refresh_exp,
            claims,
            auth,
        )?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            token_type: if auth.cnf.is_some() { "DPoP" } else { "Bearer" },
            expires_in: access_exp - now,
            // Counted on the store's clock, which decides when the session
            // ends: on this instance's clock a skewed instance would say its
            // skew more or less (and set the cookie's Max-Age so), and even a
            // true one a second less when the store's second turned first.
            refresh_expires_in: refresh_exp.saturating_sub(refresh_iat),
            device_token: None,
        })
    }

    /// Logs in: counts the attempt against the throttling limits, checks the
    /// credentials and the policy, then creates a session and issues its
    /// first token pair.
    pub async fn login(
        &self,
        credentials: A::Credentials,
        client: &ClientMeta,
    ) -> Result<TokenPair> {
        self.login_with_device(credentials, client, None).await
    }

    /// [`Reissue::login`] from a client that sent the device token of an
    /// earlier login (`TokenPair::device_token`): if it is valid and for
    /// the same account, the attempt is counted per device, not against the
    /// account's and the network's ceilings (CONTRACT.md, "Login
    /// throttling").
    pub async fn login_with_device(
        &self,
        credentials: A::Credentials,
        client: &ClientMeta,
        device_token: Option<&str>,
    ) -> Result<TokenPair> {
        self.login_with_proof(credentials, client, device_token, None)
            .await
    }

    /// [`Reissue::login_with_device`] with the request's DPoP proof, if it
    /// carried one: a valid proof binds the new session to its key
    /// ([`Config::dpop`]; the token response then says `"token_type":
    /// "DPoP"`). An invalid proof, or none where binding is required, is 400
    /// `invalid_dpop_proof` before anything is counted.
    pub async fn login_with_proof(
        &self,
        credentials: A::Credentials,
        client: &ClientMeta,
        device_token: Option<&str>,
        proof: Option<&DpopProof<'_>>,
    ) -> Result<TokenPair> {
        let result = self
            .login_counted(credentials, client, device_token, proof)
            .await;
        self.inner.metrics.login(&result);
        result
    }

    /// The proof of a login, checked but for its `jti`: `None` when the
    /// login binds no key.
    fn login_proof(
        &self,
        proof: Option<&DpopProof<'_>>,
        client: &ClientMeta,
    ) -> Result<Option<dpop::Verified>> {
        let d = &self.inner.config.dpop;
        let refused = |why| self.refuse_proof(why, true, None, None, client);
        match (d.mode, proof) {
            (DpopMode::Off, _) | (DpopMode::Optional, None) => Ok(None),
            (DpopMode::Required, None) => Err(refused(ProofRejection::Missing)),
            (_, Some(proof)) => dpop::verify(proof, d, secs((self.inner.clock)()))
                .map(Some)
                .map_err(refused),
        }
    }

    async fn login_counted(
        &self,
        credentials: A::Credentials,
        client: &ClientMeta,
        device_token: Option<&str>,
        proof: Option<&DpopProof<'_>>,
    ) -> Result<TokenPair> {
        let c = &self.inner.config;
        self.check_address_known(Stage::Login, client)?;
        // Input that names no account is refused before anything is counted.
        let account_key = self.inner.authenticator.account_key(&credentials)?;
        // So is a bad proof: it costs no password check either.
        let proof = self.login_proof(proof, client)?;
        // The address and country policy comes before anything is counted or
        // checked: a refused client costs no password check and learns
        // nothing about the password. At login it knows the account only as
        // the credentials name it, so it can deny, never revoke.
        let decision = self.check_policy(Stage::Login, &account_key, None, client, None);
        if decision != Decision::Allow {
            return Err(self
                .refuse(&decision, Stage::Login, &account_key, None, client)
                .await);
        }
        let attempt = Attempt::new(
            &*self.inner.throttle,
            c,
            &account_key,
            client.ip,
            device_token.map(|t| (t, self.tokens())),
        );
        if let Admission::Throttled { retry_after } = attempt.begin().await? {
            self.emit(
                AuditEvent::new(AuditKind::LoginThrottled)
                    .user(attempt.account())
                    .client(client),
            );
            return Err(Error::TooManyAttempts { retry_after });
        }
        let user = match self.inner.authenticator.authenticate(credentials).await {
            Ok(user) => user,
            Err(Error::InvalidCredentials) => {
                // The attempt stays counted.
                self.emit(
                    AuditEvent::new(AuditKind::LoginFailed)
                        .user(attempt.account())
                        .client(client),
                );
                return Err(Error::InvalidCredentials);
            }
            Err(e) => {
                attempt.undecided().await;
                return Err(e);
            }
        };
        if let Some(v) = &proof
            && !self
                .inner
                .proofs
                .first_use(&user.user_id, &v.replay_key, c.dpop.replay_ttl())
                .await?
        {
            attempt.undecided().await;
            let why = ProofRejection::Replayed;
            return Err(self.refuse_proof(why, true, Some(&user.user_id), None, client));
        }
        let sid = SessionId::random();
        audit::record_session(&user.user_id, &sid);
        let mut session = NewSession::new(
            user.user_id.clone(),
            sid.clone(),
            c.session_max_age,
            c.refresh_ttl,
        );
        session.max_sessions = c.max_sessions_per_user;
        session.client = client.clone();
        // Two independent keys (the account's counters, the user's sessions):
        // sent together, they cost one round trip of latency.
        let (_, created) =
            tokio::try_join!(attempt.succeeded(), self.inner.sessions.create(&session))?;
        self.ended_here(&created.evicted);
        self.inner
            .metrics
            .revoked("max_sessions", created.evicted.len());
        for old in created.evicted {
            self.emit(
                AuditEvent::new(AuditKind::ForcedLogout)
                    .user(&user.user_id)
                    .session(&old)
                    .reason("max_sessions"),
            );
        }
        let now = secs((self.inner.clock)());
        let auth =
            Authentication::new(now, user.amr).bound(proof.map(|v| Confirmation::new(v.jkt)));
        let mut pair = self.mint(&user.user_id, &sid, &user.claims, &auth, &created.first)?;
        pair.device_token = attempt.device_token(c, self.tokens(), now)?;
        let event = AuditEvent::new(AuditKind::Login)
            .user(&user.user_id)
            .session(&sid)
            .client(client);
        self.emit(event);
        Ok(pair)
    }

    /// Step-up (RFC 9470): the user of a live session proves themselves
    /// again with `credentials`, for routes that need a recent login. The
    /// attempt is counted as a login is ([`Reissue::login`]), so a wrong
    /// password is a failed attempt; credentials of another account are
    /// wrong credentials. The session keeps its `sid` and rotates to a new
    /// generation (the refresh token it had is spent as by a reissue); the
    /// new pair carries a fresh `auth_time` and the claims the
    /// authenticator gives now. A session that ended meanwhile (a logout
    /// racing this) stays ended: 401 `invalid_token`.
    ///
    /// `bound` is the session's DPoP binding, as its access token's `cnf`
    /// says: a bound session needs a valid `proof` by that key (checked
    /// before anything is counted), and its new tokens keep the binding.
    #[allow(clippy::too_many_arguments)]
    pub async fn reauthenticate(
        &self,
        user_id: &str,
        sid: &SessionId,
        credentials: A::Credentials,
        client: &ClientMeta,
        device_token: Option<&str>,
        bound: Option<&Confirmation>,
        proof: Option<&DpopProof<'_>>,
    ) -> Result<TokenPair> {
        let c = &self.inner.config;
        self.check_address_known(Stage::Login, client)?;
        let jkt = bound.map(|b| b.jkt.as_str());
        self.check_proof(jkt, proof, user_id, sid, client).await?;
        let account_key = self.inner.authenticator.account_key(&credentials)?;
        let decision = self.check_policy(Stage::Login, user_id, Some(sid), client, None);
        if decision != Decision::Allow {
            return Err(self
                .refuse(&decision, Stage::Login, user_id, Some(sid), client)
                .await);
        }
        let attempt = Attempt::new(
            &*self.inner.throttle,
            c,
            &account_key,
            client.ip,
            device_token.map(|t| (t, self.tokens())),
        );
        if let Admission::Throttled { retry_after } = attempt.begin().await? {
            self.emit(
                AuditEvent::new(AuditKind::LoginThrottled)
                    .user(attempt.account())
                    .client(client),
            );
            return Err(Error::TooManyAttempts { retry_after });
        }
        let user = match self.inner.authenticator.authenticate(credentials).await {
            // Another account's password proves nothing about this session:
            // it stays counted, as a wrong one does.
            Ok(user) if user.user_id == user_id => user,
            Ok(_) | Err(Error::InvalidCredentials) => {
                self.emit(
                    AuditEvent::new(AuditKind::LoginFailed)
                        .user(attempt.account())
                        .session(sid)
                        .client(client),
                );
                return Err(Error::InvalidCredentials);
            }
            Err(e) => {
                attempt.undecided().await;
                return Err(e);
            }
        };
        let renewal = RenewRequest::new(user_id, sid, c.refresh_ttl, client);
        let (_, renewed) =
            tokio::try_join!(attempt.succeeded(), self.inner.sessions.renew(&renewal))?;
        let successor = renewed.ok_or(Error::InvalidToken(TokenRejection::SessionRevoked))?;
        let auth = Authentication::new(secs((self.inner.clock)()), user.amr).bound(bound.cloned());
        let pair = self.mint(user_id, sid, &user.claims, &auth, &successor)?;
        self.emit(
            AuditEvent::new(AuditKind::Reauthenticated)
                .user(user_id)
                .session(sid)
                .client(client),
        );
        Ok(pair)
    }

    /// The user's credentials changed (a new password, new roles): ends
    /// every session of the user except `keep` (the session that made the
    /// change, if it should go on), and returns how many ended. In instant
    /// mode their access tokens are refused at once on every instance, as
    /// after a logout-all; with `keep` set, a session created while this
    /// runs may survive, so change the credentials first.
    pub async fn credentials_changed(
        &self,
        user_id: &str,
        keep: Option<&SessionId>,
    ) -> Result<usize> {
        let ended = match keep {
            None => self.end_all(user_id).await?.len(),
            Some(keep) => {
                let mut n = 0;
                for s in self.inner.sessions.list(user_id).await? {
                    if s.sid != *keep && self.end_session(user_id, &s.sid).await? {
                        n += 1;
                    }
                }
                n
            }
        };
        self.inner.metrics.revoked("credentials_changed", ended);
        self.emit(
            AuditEvent::new(AuditKind::CredentialsChanged)
                .user(user_id)
                .reason(format!("{ended} sessions")),
        );
        Ok(ended)
    }

    /// Exchanges a refresh token for a new pair, spending it. See CONTRACT.md
    /// "Rotation, reuse and races" for replays and reuse detection.
    ///
    /// A session bound to a DPoP key cannot be reissued so: it needs
    /// [`Reissue::reissue_with_proof`].
    pub async fn reissue(&self, refresh_token: &str, client: &ClientMeta) -> Result<TokenPair> {
        self.reissue_with_proof(refresh_token, client, None).await
    }

    /// [`Reissue::reissue`] with the request's DPoP proof: a session bound
    /// to a key needs a valid proof by it, checked before the refresh token
    /// is spent (a missing or bad one is 401 `invalid_dpop_proof`, and
    /// nothing is rotated, replayed or revoked). An unbound session's
    /// reissue ignores the proof, unless the app requires binding
    /// ([`DpopMode::Required`]): then it is refused.
    pub async fn reissue_with_proof(
        &self,
        refresh_token: &str,
        client: &ClientMeta,
        proof: Option<&DpopProof<'_>>,
    ) -> Result<TokenPair> {
        let result = self.reissue_counted(refresh_token, client, proof).await;
        self.inner.metrics.reissue(&result);
        result.map(|(pair, _)| pair)
    }

    /// [`Reissue::reissue`], and whether it was a replay.
    async fn reissue_counted(
        &self,
        refresh_token: &str,
        client: &ClientMeta,
        proof: Option<&DpopProof<'_>>,
    ) -> Result<(TokenPair, bool)> {
        let c = &self.inner.config;
        // The application's claims travel in the refresh token.
        let (rt, claims) = self
            .tokens()
            .verify_refresh_carrying::<A::Claims>(refresh_token, true)?;
        let claims = claims.ok_or(Error::InvalidToken(TokenRejection::MissingClaim))?;
        audit::record_session(&rt.sub, &rt.sid);
        self.check_address_known(Stage::Reissue, client)?;
        // The binding is in the signed token, so it is known (and its proof
        // checked) before the store is asked: a bad proof spends nothing.
        let bound = rt.authentication.jkt();
        if bound.is_none() && c.dpop.mode == DpopMode::Required {
            let why = ProofRejection::Unbound;
            return Err(self.refuse_proof(why, false, Some(&rt.sub), Some(&rt.sid), client));
        }
        self.check_proof(bound, proof, &rt.sub, &rt.sid, client)
            .await?;
        let mut request = RotateRequest::new(
            &rt.sub,
            &rt.sid,
            rt.generation,
            c.reuse_grace,
            c.refresh_ttl,
            client,
        );
        request.issued_at_ms = rt.iat.saturating_mul(1000);
        request.max_ahead = c.lost_write_tolerance;
        let rotation = self.inner.sessions.rotate(&request).await?;
        tracing::Span::current().record(
            "detail",
            match &rotation {
                Rotation::Rotated(_) => "rotated",
                Rotation::Replayed(_) => "grace_replay",
                Rotation::Reused => "reuse_detected",
                Rotation::NotFound => "session_ended",
            },
        );
        let (successor, kind) = match rotation {
            Rotation::Rotated(s) => (s, AuditKind::Reissue),
            Rotation::Replayed(s) => (s, AuditKind::ReissueReplayed),
            Rotation::Reused => {
                self.ended_here([&rt.sid]);
                self.inner.metrics.revoked("reuse_detected", 1);
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
        // auth_time and amr stay the login's across rotations.
        let pair = self.mint(&rt.sub, &rt.sid, &claims, &rt.authentication, &successor)?;
        let event = AuditEvent::new(kind)
            .user(&rt.sub)
            .session(&rt.sid)
            .client(client);
        let replayed = kind == AuditKind::ReissueReplayed;
        let event = if replayed {
            event.reason(format!("generation {} presented again", rt.generation))
        } else {
            event
        };
        self.emit(event);
        Ok((pair, replayed))
    }

    /// What this instance itself ended is refused here at once: before the
    /// store's feed echoes it back (instant mode), or without asking the
    /// store (strict mode).
    fn ended_here<'a>(&self, sids: impl IntoIterator<Item = &'a SessionId>) {
        if let Some(revocations) = self.verifier().revocations() {
            for sid in sids {
                revocations.insert(sid.clone());
            }
        }
    }

    async fn end_session(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        let ended = self.inner.sessions.revoke(user_id, sid).await?;
        if ended {
            self.ended_here([sid]);
        }
        Ok(ended)
    }

    async fn end_all(&self, user_id: &str) -> Result<Vec<SessionId>> {
        let ended = self.inner.sessions.revoke_all(user_id).await?;
        self.ended_here(&ended);
        Ok(ended)
    }

    /// Ends one session (a user's logout). Ending an ended session is fine.
    pub async fn logout(&self, user_id: &str, sid: &SessionId) -> Result<()> {
        self.revoke_session(user_id, sid).await.map(drop)
    }

    /// Ends every session of a user, at the user's request; returns how many.
    pub async fn logout_all(&self, user_id: &str) -> Result<usize> {
        let n = self.end_all(user_id).await?.len();
        self.inner.metrics.revoked("logout_all", n);
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
        let n = self.end_all(user_id).await?.len();
        self.inner.metrics.revoked("forced", n);
        self.emit(
            AuditEvent::new(AuditKind::ForcedLogout)
                .user(user_id)
                .reason(reason),
        );
        Ok(n)
    }

    /// Ends one session of a user; `false` when it is not one of their live sessions.
    pub async fn revoke_session(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        let revoked = self.end_session(user_id, sid).await?;
        if revoked {
            self.inner.metrics.revoked("logout", 1);
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
        self.inner.sessions.list(user_id).await
    }

    /// Whether a session is live.
    pub async fn is_live(&self, user_id: &str, sid: &SessionId) -> Result<bool> {
        self.inner.sessions.is_live(user_id, sid).await
    }
}
