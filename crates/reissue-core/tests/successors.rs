//! "The same successor" under every supported algorithm, through `Reissue`
//! on a `MemoryStore`.
//!
//! RSASSA-PSS (and ECDSA under `aws-lc-rs`) sign with fresh randomness, so a
//! grace-window replay gets another byte string than the first call. The
//! store decides by `(sid, generation)`, never by the bytes, so both strings
//! are the same successor: each is accepted once as generation 2 and, once
//! the other has rotated, it is a replay within the grace window and theft
//! after it. One test per algorithm, so a failure names it; run them under
//! the other backend with
//! `cargo test -p reissue-core --no-default-features --features aws-lc-rs,redis,geoip --test successors`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use reissue_core::store::MemoryStore;
use reissue_core::{
    Algorithm, Config, Error, Key, KeySet, RefreshClaims, Reissue, Result, SessionId,
    TokenRejection, UserClaims,
};
use support::{AnyUser, pem, signs_deterministically};

/// Each replay below follows the rotation it replays by one reissue (two
/// signatures: well under a second even for debug-build RSA on a busy 2-core
/// machine); each test sleeps past the window once.
const GRACE: Duration = Duration::from_secs(3);

fn key(alg: Algorithm) -> Key {
    use Algorithm::*;
    let kid = format!("{alg:?}").to_lowercase();
    match alg {
        HS256 => Key::hmac(kid, alg, &[1; 32]),
        HS384 => Key::hmac(kid, alg, &[2; 48]),
        HS512 => Key::hmac(kid, alg, &[3; 64]),
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Key::from_private_pem(kid, alg, pem::RSA),
        ES256 => Key::from_private_pem(kid, alg, pem::EC),
        ES384 => Key::from_private_pem(kid, alg, pem::EC384),
        EdDSA => Key::from_private_pem(kid, alg, pem::ED),
        other => panic!("no test key for {other:?}"),
    }
    .unwrap_or_else(|e| panic!("{alg:?} test key: {e}"))
}

fn reissue(alg: Algorithm) -> Reissue<AnyUser> {
    let config = Config::new("successors-test", "successors-test").reuse_grace(GRACE);
    Reissue::builder(
        config,
        KeySet::new(key(alg)).unwrap(),
        Arc::new(MemoryStore::new()),
        AnyUser,
    )
    .build()
    .unwrap()
}

/// One session's state after the grace replay: its id and the two strings
/// of generation 2 (the first call's, then the replay's).
struct Replayed {
    sid: SessionId,
    first: String,
    replay: String,
}

struct Check {
    reissue: Reissue<AnyUser>,
    alg: Algorithm,
}

impl Check {
    fn hs256() -> Self {
        Self {
            reissue: reissue(Algorithm::HS256),
            alg: Algorithm::HS256,
        }
    }

    /// Logs `user` in: the refresh token's claims, and the token.
    async fn login(&self, user: &str) -> (RefreshClaims, String) {
        let client = self.reissue.client_at(None, None);
        let login = self.reissue.login(user.to_owned(), &client).await.unwrap();
        (self.claims(&login.refresh_token), login.refresh_token)
    }

    /// The refresh token of `c`'s session and generation, signed again with
    /// `iat` and the carried claims `app`.
    fn remint(&self, c: &RefreshClaims, iat: u64, app: &impl reissue_core::Claims) -> String {
        self.reissue
            .tokens()
            .issue_refresh(&c.sub, &c.sid, c.generation, iat, c.exp, app)
            .unwrap()
    }

    fn claims(&self, refresh_token: &str) -> RefreshClaims {
        self.reissue
            .tokens()
            .verify_refresh(refresh_token)
            .unwrap_or_else(|e| panic!("{:?}: a refresh token we issued: {e:?}", self.alg))
    }

    async fn reissue(&self, refresh_token: &str) -> Result<reissue_core::TokenPair> {
        let client = self.reissue.client_at(None, None);
        self.reissue.reissue(refresh_token, &client).await
    }

    /// Reissues and checks the successor's session and generation.
    async fn rotates_to(&self, refresh_token: &str, sid: &SessionId, generation: u64, what: &str) {
        let alg = self.alg;
        let pair = self
            .reissue(refresh_token)
            .await
            .unwrap_or_else(|e| panic!("{alg:?}: {what}: {e:?}"));
        let c = self.claims(&pair.refresh_token);
        assert_eq!((&c.sid, c.generation), (sid, generation), "{alg:?}: {what}");
        let id = self
            .reissue
            .verifier()
            .verify(&pair.access_token)
            .unwrap_or_else(|e| panic!("{alg:?}: {what}: access token: {e:?}"));
        // the login's claims, carried by the refresh tokens (the store keeps none)
        assert_eq!(
            id.claims,
            UserClaims::new(format!("{}@example.com", c.sub), vec!["user".to_owned()]),
            "{alg:?}: {what}"
        );
    }

    /// Reissues, expecting the session's successor `generation` (a rotation
    /// or a replay), and returns its refresh token.
    async fn successor(
        &self,
        refresh_token: &str,
        sid: &SessionId,
        generation: u64,
        what: &str,
    ) -> String {
        let pair = self
            .reissue(refresh_token)
            .await
            .unwrap_or_else(|e| panic!("{:?}: {what}: {e:?}", self.alg));
        let c = self.claims(&pair.refresh_token);
        assert_eq!(
            (&c.sid, c.generation),
            (sid, generation),
            "{:?}: {what}",
            self.alg
        );
        pair.refresh_token
    }

    async fn refused(&self, refresh_token: &str, why: TokenRejection, what: &str) {
        match self.reissue(refresh_token).await {
            Err(Error::InvalidToken(got)) if got == why => {}
            other => panic!("{:?}: {what}: expected {why:?}, got {other:?}", self.alg),
        }
    }

    /// Logs in, reissues, and replays the spent login token within the grace.
    async fn login_and_replay(&self, user: &str) -> Replayed {
        let alg = self.alg;
        let (c, login) = self.login(user).await;
        let sid = c.sid;
        let first = self.successor(&login, &sid, 2, "first reissue").await;
        let replay = self
            .successor(&login, &sid, 2, "grace replay: 200, the same successor")
            .await;
        assert_eq!(
            first == replay,
            signs_deterministically(alg),
            "{alg:?}: byte-identical exactly where the algorithm signs deterministically"
        );
        Replayed { sid, first, replay }
    }
}

async fn grace_replay_yields_the_same_successor(alg: Algorithm) {
    let check = Check {
        reissue: reissue(alg),
        alg,
    };
    // Session 1: the replay's string rotates first; session 2: the first call's.
    let one = check.login_and_replay("one").await;
    let two = check.login_and_replay("two").await;

    let three = check
        .successor(&one.replay, &one.sid, 3, "the replay's string rotates")
        .await;
    let three_again = check
        .successor(
            &one.first,
            &one.sid,
            3,
            "then the first string is a grace replay",
        )
        .await;
    assert_eq!(
        three == three_again,
        signs_deterministically(alg),
        "{alg:?}"
    );
    let two_three = check
        .successor(&two.first, &two.sid, 3, "the first string rotates")
        .await;
    check
        .successor(
            &two.replay,
            &two.sid,
            3,
            "then the replay's string is a grace replay",
        )
        .await;

    tokio::time::sleep(GRACE + Duration::from_millis(300)).await;

    // Session 1 never forked: generation 3 rotates once, in either string...
    let four = check
        .successor(&three, &one.sid, 4, "generation 3 rotates")
        .await;
    check
        .rotates_to(
            &three_again,
            &one.sid,
            4,
            "its other string is a grace replay",
        )
        .await;
    // ...and generation 2, in either string, is now an older generation: theft,
    // and the whole session ends.
    check
        .refused(
            &one.first,
            TokenRejection::ReuseDetected,
            "an older generation",
        )
        .await;
    check
        .refused(
            &four,
            TokenRejection::SessionRevoked,
            "after reuse detection",
        )
        .await;

    // Session 2: generation 2 spent longer ago than the grace window, in the
    // string that did not rotate: theft, and the session ends.
    check
        .refused(
            &two.replay,
            TokenRejection::ReuseDetected,
            "replay after the grace window",
        )
        .await;
    check
        .refused(
            &two_three,
            TokenRejection::SessionRevoked,
            "after reuse detection",
        )
        .await;
}

/// One `#[tokio::test]` per algorithm.
macro_rules! every_algorithm {
    ($($name:ident: $alg:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                grace_replay_yields_the_same_successor(Algorithm::$alg).await;
            }
        )*
    };
}

every_algorithm! {
    grace_replay_hs256: HS256,
    grace_replay_hs384: HS384,
    grace_replay_hs512: HS512,
    grace_replay_rs256: RS256,
    grace_replay_rs384: RS384,
    grace_replay_rs512: RS512,
    grace_replay_ps256: PS256,
    grace_replay_ps384: PS384,
    grace_replay_ps512: PS512,
    grace_replay_es256: ES256,
    grace_replay_es384: ES384,
    grace_replay_eddsa: EdDSA,
}

/// A refresh token's `iat` is when its generation was minted, by the store's
/// clock; an instance whose own clock lags the store's must still rotate it
/// (the access token's `iat` check does not apply to refresh tokens).
#[tokio::test]
async fn a_refresh_token_minted_by_a_clock_ahead_still_rotates() {
    let check = Check::hs256();
    let (c, _) = check.login("lagging").await;
    let app = UserClaims::new(format!("{}@example.com", c.sub), vec!["user".to_owned()]);
    let ahead = check.remint(&c, c.iat + 120, &app);
    check.rotates_to(&ahead, &c.sid, 2, "iat 120 s ahead").await;
}

/// A refresh token whose carried claims are not the application's claims
/// type (signed by us, say, before the type changed) is refused before the
/// store is touched: 401, and the session's current token still rotates.
#[tokio::test]
async fn carried_claims_of_another_shape_are_refused_before_the_store() {
    let check = Check::hs256();
    let (c, login) = check.login("reshaped").await;
    let reshaped = check.remint(&c, c.iat, &serde_json::json!({ "email": 42 }));
    check
        .refused(
            &reshaped,
            TokenRejection::MissingClaim,
            "claims of another shape",
        )
        .await;
    check
        .rotates_to(&login, &c.sid, 2, "the session was not spent")
        .await;
}
