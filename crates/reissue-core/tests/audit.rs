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

/// A DPoP proof for `POST https://app.example.com<path>`, signed with the
/// test P-256 key.
fn proof(path: &str, jti: &str) -> String {
    use base64::Engine as _;
    let key = jsonwebtoken::EncodingKey::from_ec_pem(reissue_test_support::pem::EC).unwrap();
    let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
    let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
    let claims = serde_json::json!({
        "htm": "POST",
        "htu": format!("https://app.example.com{path}"),
        "iat": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        "jti": jti,
    });
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let message = format!("{}.{}", b64(&header), b64(&claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::ES256).unwrap();
    format!("{message}.{signature}")
}

#[tokio::test]
async fn refused_dpop_proofs_are_audited_and_change_nothing() {
    use reissue_core::{DpopProof, Origin, ProofRejection};
    let trail = Trail::default();
    let r = reissue(&trail);
    let client = ClientMeta::default();
    let origin = Origin::parse("https://app.example.com").unwrap();
    let login = proof("/auth/login", "login-1");
    let first = r
        .login_with_proof(
            ("ann".into(), "right".into()),
            &client,
            None,
            Some(&DpopProof::new(&login, "POST", &origin, "/auth/login")),
        )
        .await
        .unwrap();
    assert_eq!(first.token_type, "DPoP");
    trail.take();
    // The plain API cannot refresh a bound session: there is no path around
    // the proof.
    let refused = r.reissue(&first.refresh_token, &client).await.unwrap_err();
    assert!(
        matches!(
            refused,
            Error::InvalidDpopProof {
                why: ProofRejection::Missing,
                login: false,
                ..
            }
        ),
        "{refused:?}"
    );
    assert_eq!(refused.status(), 401);
    // A proof made for another URL, and a replayed one.
    let wrong = proof("/auth/logout", "reissue-1");
    let wrong = DpopProof::new(&wrong, "POST", &origin, "/auth/reissue");
    r.reissue_with_proof(&first.refresh_token, &client, Some(&wrong))
        .await
        .unwrap_err();
    let events = trail.take();
    assert_eq!(
        events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [AuditKind::DpopRefused, AuditKind::DpopRefused]
    );
    assert_eq!(events[0].user_id.as_deref(), Some("7"));
    assert!(events[0].session_id.is_some());
    for e in &events {
        assert!(
            !format!("{e:?}").contains(&first.refresh_token[..20]),
            "no token in the trail: {e:?}"
        );
    }
    // Nothing was spent: the right proof rotates the very same token.
    let good = proof("/auth/reissue", "reissue-2");
    let good = DpopProof::new(&good, "POST", &origin, "/auth/reissue");
    let next = r
        .reissue_with_proof(&first.refresh_token, &client, Some(&good))
        .await
        .unwrap();
    assert_eq!(trail.kinds(), [AuditKind::Reissue]);
    let claims = r.tokens().verify_refresh(&next.refresh_token).unwrap();
    assert_eq!(claims.generation, 2);
    // The same proof a second time is a replay.
    let again = r
        .reissue_with_proof(&next.refresh_token, &client, Some(&good))
        .await
        .unwrap_err();
    assert!(matches!(
        again,
        Error::InvalidDpopProof {
            why: ProofRejection::Replayed,
            ..
        }
    ));
}
