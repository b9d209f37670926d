//! The SIGHUP test of both example apps, run on the real binary: the GeoIP
//! database file is replaced, SIGHUP makes the running app read it again, a
//! corrupt replacement is refused and the database in use kept.
//!
//! Run by `examples/{axum,actix}-app/tests/sighup.rs` with the path of
//! their binary.

use std::path::Path;

use super::process::App;
use crate::geoip::{Place, home, write_mmdb};

fn mmdb(networks: &[(&str, Place)]) -> Vec<u8> {
    let networks: Vec<_> = networks
        .iter()
        .map(|(net, place)| (net.parse().unwrap(), *place))
        .collect();
    write_mmdb(&networks, 1).unwrap()
}

/// Replaces `path` the way geoipupdate does: a new file renamed over it.
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The app on `db`, behind a trusted proxy on 127.0.0.1.
fn start(bin: &str, dir: &Path, db: &Path) -> App {
    App::start(
        bin,
        &[
            (
                "DATABASE_URL",
                format!("sqlite://{}", dir.join("users.sqlite").display()).into(),
            ),
            (
                "REISSUE_JWT_SECRET",
                "sighup-test-secret-0123456789abcdef-0123".into(),
            ),
            ("REISSUE_GEOIP_DB", db.into()),
            ("REISSUE_ALLOWED_COUNTRIES", "GB".into()),
            ("REISSUE_TRUSTED_PROXIES", "127.0.0.1/32".into()),
        ],
    )
}

/// The status of a login from `ip` (a client behind the trusted proxy).
fn login_from(app: &App, ip: &str) -> u16 {
    let creds = r#"{"email":"hup@example.com","password":"correct horse battery"}"#;
    app.request("POST", "/auth/login", &[("X-Forwarded-For", ip)], creds)
        .0
}

/// A (81.2.69.0/24 GB, 89.160.20.0/24 SE) → B (FR, GB) on SIGHUP;
/// then a corrupt file on SIGHUP: refused, B kept.
pub fn reloads_geoip_on_sighup(bin: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = dir.join("countries.mmdb");
    std::fs::write(
        &db,
        mmdb(&[("81.2.69.0/24", home("GB")), ("89.160.20.0/24", home("SE"))]),
    )
    .unwrap();
    let mut app = start(bin, dir, &db);
    let (status, body) = app.request(
        "POST",
        "/signup",
        &[],
        r#"{"email":"hup@example.com","password":"correct horse battery"}"#,
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(login_from(&app, "81.2.69.1"), 200, "GB under A");
    assert_eq!(login_from(&app, "89.160.20.1"), 403, "SE under A");

    replace(
        &db,
        &mmdb(&[("81.2.69.0/24", home("FR")), ("89.160.20.0/24", home("GB"))]),
    );
    // Nothing changes until the signal.
    assert_eq!(login_from(&app, "81.2.69.1"), 200, "A until SIGHUP");
    app.signal("HUP");
    app.wait_for_log("GeoIP database reloaded");
    app.assert_running();
    assert_eq!(login_from(&app, "81.2.69.1"), 403, "FR under B");
    assert_eq!(login_from(&app, "89.160.20.1"), 200, "GB under B");

    // A broken update: the app says so and keeps B.
    replace(&db, b"\xab\xcd\xefMaxMind.com not really a database");
    app.signal("HUP");
    let line = app.wait_for_log("GeoIP database kept");
    assert!(line.contains(&db.display().to_string()), "{line}");
    app.assert_running();
    assert_eq!(login_from(&app, "89.160.20.1"), 200, "B kept");
    assert_eq!(login_from(&app, "81.2.69.1"), 403, "B kept");
}
