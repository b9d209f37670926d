//! The audit trail tells an operator what happened without the secrets:
//! failed and throttled logins name the account by digest, never by the typed
//! text; a grace replay is told apart from a rotation and from reuse.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reissue_core::store::{ClientMeta, MemoryStore};
use reissue_core::{
    Algorithm, AuditEvent, AuditKind, AuditSink, Authenticated, Authenticator, Config, Error, Key,
    KeySet, Reissue, UserClaims,
};

#[derive(Debug, Default, Clone)]
struct Trail(Arc<Mutex<Vec<AuditEvent>>>);

impl AuditSink for Trail {
    fn record(&self, event: &AuditEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Trail {
    fn kinds(&self) -> Vec<AuditKind> {
        self.0.lock().unwrap().iter().map(|e| e.kind).collect()
    }
    fn take(&self) -> Vec<AuditEvent> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// `(account, password)`; the password of every account is "right".
struct Passwords;

impl Authenticator for Passwords {
    type Credentials = (String, String);
    type Claims = UserClaims;
    fn account_key(&self, c: &(String, String)) -> reissue_core::Result<String> {
        Ok(c.0.to_lowercase())
    }
    async fn authenticate(
        &self,
        (account, password): (String, String),
    ) -> reissue_core::Result<Authenticated<UserClaims>> {
        if password == "right" {
            Ok(Authenticated::new("7", UserClaims::new(account, vec![])))
        } else {
            Err(Error::InvalidCredentials)
        }
    }
}

fn reissue(trail: &Trail) -> Reissue<Passwords> {
    let key = Key::hmac("k", Algorithm::HS256, &[3; 32]).unwrap();
    let config = Config::new("a", "a")
        .login_lockout(2, Duration::from_secs(60))
        .reuse_grace(Duration::from_millis(300));
    Reissue::builder(
        config,
        KeySet::new(key).unwrap(),
        Arc::new(MemoryStore::new()),
        Passwords,
    )
    .audit(trail.clone())
    .build()
    .unwrap()
}

#[tokio::test]
async fn failed_logins_name_the_account_by_digest_only() {
    let trail = Trail::default();
    let r = reissue(&trail);
    let client = ClientMeta::new(Some([198, 51, 100, 4].into()), None, None);
    // People type their password into the email box.
    let typed = "Hunter2-my-password".to_owned();
    for _ in 0..2 {
        r.login((typed.clone(), "wrong".into()), &client)
            .await
            .unwrap_err();
    }
    r.login((typed.clone(), "right".into()), &client)
        .await
        .unwrap_err();
    let events = trail.take();
    let kinds: Vec<AuditKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            AuditKind::LoginFailed,
            AuditKind::LoginFailed,
            AuditKind::LoginThrottled
        ]
    );
    for e in &events {
        let who = e.user_id.as_deref().unwrap();
        assert_eq!(who.len(), 22, "a digest: {who}");
        assert!(!who.to_lowercase().contains("hunter2"), "{e:?}");
        assert!(
            !format!("{e:?}").to_lowercase().contains("hunter2"),
            "{e:?}"
        );
        assert_eq!(e.ip, client.ip);
    }
    assert_eq!(
        events[0].user_id, events[2].user_id,
        "one account, one name"
    );
}

#[tokio::test]
async fn grace_replays_are_audited_apart_from_rotations_and_reuse() {
    let trail = Trail::default();
    let r = reissue(&trail);
    let client = ClientMeta::default();
    let first = r
        .login(("ann".into(), "right".into()), &client)
        .await
        .unwrap();
    r.reissue(&first.refresh_token, &client).await.unwrap();
    r.reissue(&first.refresh_token, &client).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    r.reissue(&first.refresh_token, &client).await.unwrap_err();
    assert_eq!(
        trail.kinds(),
        [
            AuditKind::Login,
            AuditKind::Reissue,
            AuditKind::ReissueReplayed,
            AuditKind::ReuseDetected
        ]
    );
    let replay = &trail.take()[2];
    assert_eq!(replay.kind.as_str(), "reissue_replayed");
    assert!(replay.session_id.is_some() && replay.user_id.as_deref() == Some("7"));
}
