//! The wall clock steps under a running app (NTP, a VM resumed): the app
//! runs under libfaketime, whose offset the test changes while it runs
//! (`FAKETIME_TIMESTAMP_FILE`, read on every call). The monotonic clock is
//! left alone, as a real step leaves it. Logins and reissues keep working
//! at once: the store's time is learned from the store and carried forward
//! by the monotonic clock, never by the wall clock.
//!
//! Run by `examples/{axum,actix}-app/tests/clock.rs` with the path of their
//! binary, on a Redis of the test's own.

use std::path::Path;

use super::process::App;
use crate::RedisServer;

/// Where Debian's `libfaketime` package puts the library.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

const CREDS: &str = r#"{"email":"clock@example.com","password":"correct horse battery"}"#;

/// A string member of a JSON body.
fn member(body: &str, name: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_owned()
}

/// The `iat` of a JWT: the app's wall clock when it signed it.
fn iat(token: &str) -> i64 {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: serde_json::Value = serde_json::from_slice(&json).expect("JSON claims");
    claims["iat"].as_i64().expect("iat")
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn step(file: &Path, offset: &str) {
    std::fs::write(file, format!("{offset}\n")).unwrap();
}

fn login(app: &App) -> (String, String) {
    let (status, body) = app.request("POST", "/auth/login", &[], CREDS);
    assert_eq!(status, 200, "login: {body}");
    (
        member(&body, "access_token"),
        member(&body, "refresh_token"),
    )
}

fn reissue(app: &App, refresh: &str) -> (String, String) {
    let (status, body) = app.request(
        "POST",
        "/auth/reissue",
        &[],
        &format!(r#"{{"refresh_token":"{refresh}"}}"#),
    );
    assert_eq!(status, 200, "reissue: {body}");
    (
        member(&body, "access_token"),
        member(&body, "refresh_token"),
    )
}

fn me(app: &App, access: &str) -> u16 {
    let auth = format!("Bearer {access}");
    app.request("GET", "/me", &[("Authorization", &auth)], "").0
}

/// A step back of 3 s, then forward of 3 s past real time: the first
/// login, reissue and protected request after each step succeed, and the
/// tokens of before the step keep working.
pub fn survives_wall_clock_steps(bin: &str) {
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is missing: apt install libfaketime"
    );
    let redis = RedisServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let offset = tmp.path().join("faketime");
    step(&offset, "+0");
    let app = App::start(
        bin,
        &[
            (
                "DATABASE_URL",
                format!("sqlite://{}", tmp.path().join("users.sqlite").display()).into(),
            ),
            ("REDIS_URL", redis.url().into()),
            (
                "REISSUE_JWT_SECRET",
                "clock-test-secret-0123456789abcdef-012345".into(),
            ),
            ("LD_PRELOAD", LIBFAKETIME.into()),
            ("FAKETIME_TIMESTAMP_FILE", offset.clone().into()),
            ("FAKETIME_NO_CACHE", "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
        ],
    );
    let (status, body) = app.request("POST", "/signup", &[], CREDS);
    assert_eq!(status, 201, "{body}");
    let (_, refresh) = login(&app);
    let mut session = reissue(&app, &refresh);
    assert_eq!(me(&app, &session.0), 200);

    for (offset_now, shift) in [("-3", -3), ("+3", 3)] {
        step(&offset, offset_now);
        // The step is in effect: the app signs with its stepped clock.
        let (fresh, fresh_refresh) = login(&app);
        let skew = iat(&fresh) - now_secs();
        assert!(
            (skew - shift).abs() <= 1,
            "the app's clock is {skew} s off, not {shift} s: is libfaketime preloaded?"
        );
        reissue(&app, &fresh_refresh);
        assert_eq!(me(&app, &fresh), 200, "a token signed after the step");
        // The session of before the step goes on.
        assert_eq!(me(&app, &session.0), 200, "a token signed before the step");
        session = reissue(&app, &session.1);
        assert_eq!(me(&app, &session.0), 200);
    }
}
