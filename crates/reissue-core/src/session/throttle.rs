//! Login throttling: each login attempt is counted before the password is
//! checked, and settled once the outcome is known, on the counters
//! [`LoginAttempt::counters`] names: per account and network, per account,
//! per network across accounts; or, from a device that logged in to the
//! account before (a device token), per device only. The counters live in
//! the store's [`LoginThrottle`], shared by every instance.

use std::net::IpAddr;

use crate::client::network_of;
use crate::store::{Admission, AttemptEnd, LoginAttempt, LoginThrottle};
use crate::{Config, Result, SessionId, TokenCodec};

/// One login attempt: the account (as a digest: the store never holds what
/// the user typed) and the client's network, with the limits that apply.
pub(super) struct Attempt<'a> {
    throttle: &'a dyn LoginThrottle,
    account: String,
    network: String,
    /// The device of a valid device token for this account.
    device: Option<String>,
    max_per_network: u32,
    max_per_account: u32,
    max_per_client_network: u32,
    window: std::time::Duration,
}

impl<'a> Attempt<'a> {
    /// An attempt on the account `account_key` names from `ip`; a device
    /// token is taken only if it is valid and was issued for this account
    /// (anything else counts as no device: it is no error to send a stale
    /// one).
    pub(super) fn new(
        throttle: &'a dyn LoginThrottle,
        config: &Config,
        account_key: &str,
        ip: Option<IpAddr>,
        device_token: Option<(&str, &TokenCodec)>,
    ) -> Self {
        let account = account_digest(account_key);
        let device = device_token
            .and_then(|(token, codec)| codec.verify_device(token).ok())
            .filter(|(for_account, _)| *for_account == account)
            .map(|(_, device)| device);
        Self {
            throttle,
            account,
            network: network_of(ip),
            device,
            max_per_network: config.login_max_failures,
            max_per_account: config.account_ceiling(),
            max_per_client_network: config.network_ceiling(),
            window: config.login_lockout,
        }
    }

    /// The device token a successful attempt answers: for the device it
    /// came from, or a new one; `None` when the configuration issues none.
    pub(super) fn device_token(
        &self,
        config: &Config,
        codec: &TokenCodec,
        now: u64,
    ) -> Result<Option<String>> {
        let ttl = config.device_token_ttl.as_secs();
        if ttl == 0 {
            return Ok(None);
        }
        let device = match &self.device {
            Some(device) => device.clone(),
            None => SessionId::random().as_str().to_owned(),
        };
        codec
            .issue_device(&self.account, &device, now, ttl)
            .map(Some)
    }

    /// The account's digest, as audit events name it.
    pub(super) fn account(&self) -> &str {
        &self.account
    }

    fn counters(&self) -> LoginAttempt<'_> {
        LoginAttempt {
            account: &self.account,
            network: &self.network,
            device: self.device.as_deref(),
            max_per_network: self.max_per_network,
            max_per_account: self.max_per_account,
            max_per_client_network: self.max_per_client_network,
            window: self.window,
        }
    }

    /// Counts the attempt, or refuses it when a limit is reached.
    pub(super) async fn begin(&self) -> Result<Admission> {
        self.throttle.begin_login(&self.counters()).await
    }

    /// The credentials were right: the network's failures are forgiven.
    pub(super) async fn succeeded(&self) -> Result<()> {
        self.throttle
            .end_login(&self.counters(), AttemptEnd::Succeeded)
            .await
    }

    /// Nothing was learnt about the password (the user store failed): the
    /// attempt is taken back, as far as the store can be reached.
    pub(super) async fn undecided(&self) {
        if let Err(undo) = self
            .throttle
            .end_login(&self.counters(), AttemptEnd::Undecided)
            .await
        {
            tracing::warn!(error = %undo, "could not take back an undecided login attempt");
        }
    }
}

/// What the throttle counts an account by: a digest of the account key, so
/// that neither the store nor the logs hold what the user typed, and keys
/// stay short whatever the input.
pub(crate) fn account_digest(account: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(account.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::account_digest;

    #[test]
    fn account_digests_are_short_and_opaque() {
        let long = "x".repeat(16 * 1024);
        let d = account_digest(&long);
        assert_eq!(d.len(), 22);
        assert!(!d.contains('x'));
        assert_ne!(
            account_digest("a@example.com"),
            account_digest("b@example.com")
        );
        assert_eq!(
            account_digest("a@example.com"),
            account_digest("a@example.com")
        );
    }
}
