//! Strict revocation across processes: three app processes on one Redis,
//! in strict mode; one is stopped (SIGSTOP) across a logout made on another.
//! The logout returns (once the stopped instance's lease has run out in the
//! store); resumed (SIGCONT), the stopped instance refuses the logged-out
//! session's access token from its first request, knowing by its own clock
//! that its lease lapsed.
//!
//! Run by `examples/{axum,actix}-app/tests/strict_stop.rs` with the path of
//! their binary.

use std::path::Path;
use std::time::{Duration, Instant};

use super::process::App;
use crate::RedisServer;

/// One strict instance on `redis` under `prefix`, its users in `db`.
fn start(bin: &str, db: &Path, redis: &str, prefix: &str) -> App {
    App::start(
        bin,
        &[
            ("DATABASE_URL", format!("sqlite://{}", db.display()).into()),
            (
                "REISSUE_JWT_SECRET",
                "strict-stop-test-secret-0123456789abcdef".into(),
            ),
            ("REDIS_URL", redis.into()),
            ("REISSUE_REDIS_PREFIX", prefix.into()),
            ("REISSUE_STRICT_REVOCATION", "1".into()),
        ],
    )
}

fn me(app: &App, access: &str) -> u16 {
    let auth = format!("Bearer {access}");
    app.request("GET", "/me", &[("Authorization", &auth)], "").0
}

fn log_out(app: &App, access: &str) -> u16 {
    let auth = format!("Bearer {access}");
    app.request("POST", "/auth/logout", &[("Authorization", &auth)], "")
        .0
}

fn access_token(body: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    v["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token in {body:?}"))
        .to_owned()
}

/// The scenario, on the app binary `bin`.
pub fn stopped_instance_refuses_after_resume(bin: &str) {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("strict-stop:{}:", std::process::id());
    let apps: Vec<App> = (0..3)
        .map(|i| {
            start(
                bin,
                &dir.path().join(format!("users{i}.sqlite")),
                &redis.url(),
                &prefix,
            )
        })
        .collect();
    let [a, b, c] = [&apps[0], &apps[1], &apps[2]];
    let creds = r#"{"email":"stop@example.com","password":"correct horse battery"}"#;
    assert_eq!(a.request("POST", "/signup", &[], creds).0, 201);
    for round in 0..2 {
        if round > 0 {
            // Set-up, not a condition of the assertions (they hold either
            // way): the resumed instance finds its lease lapsed in the store,
            // re-syncs and takes a new one, so that this round stops a
            // holder again.
            std::thread::sleep(Duration::from_secs(1));
        }
        let (status, body) = a.request("POST", "/auth/login", &[], creds);
        assert_eq!(status, 200, "{body}");
        let access = access_token(&body);
        // The apps take their leases as they start; until then they ask the
        // store. Either way the session is live on every one.
        let started = Instant::now();
        for app in [a, b, c] {
            assert_eq!(me(app, &access), 200);
        }
        b.signal("STOP");
        let logout = Instant::now();
        assert_eq!(
            log_out(a, &access),
            204,
            "round {round}: the logout returns with an instance stopped"
        );
        let took = logout.elapsed();
        assert_eq!(me(c, &access), 401, "round {round}: the healthy instance");
        b.signal("CONT");
        assert_eq!(
            me(b, &access),
            401,
            "round {round}: the resumed instance's first request"
        );
        println!(
            "round {round}: logout with one of three instances stopped took {took:?} ({:?} after login)",
            started.elapsed()
        );
    }
}
