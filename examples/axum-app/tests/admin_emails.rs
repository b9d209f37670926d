//! `REISSUE_ADMIN_EMAILS` grants admin to vouched accounts only: an account
//! signed up with a listed address gets no admin role until `reissue-admin
//! users vouch` marks it, and loses it on `unvouch` (that `users create`
//! vouches is the admin CLI's own test). The app runs as its own process on
//! a SQLite file; the admin CLI runs in this process on the same file.
#![cfg(unix)]

use clap::Parser;
use reissue_test_support::apps::process::App;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

/// `reissue-admin --json <args>` on `database_url`: its JSON report.
fn admin(database_url: &str, args: &[&str]) -> Value {
    let mut argv = vec![
        "reissue-admin",
        "--database-url",
        database_url,
        "--redis-url=",
        "--json",
    ];
    argv.extend_from_slice(args);
    let cli = reissue_admin::Cli::try_parse_from(argv).expect("admin flags");
    let mut out = Vec::new();
    let ok = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(cli.run(&mut out))
        .expect("reissue-admin");
    assert!(ok, "{}", String::from_utf8_lossy(&out));
    serde_json::from_slice(&out).expect("a JSON report")
}

/// The roles `/me` shows after a login as `email`.
fn roles(app: &App, email: &str) -> Value {
    let creds = json!({ "email": email, "password": PASSWORD }).to_string();
    let (status, body) = app.request("POST", "/auth/login", &[], &creds);
    assert_eq!(status, 200, "{body}");
    let pair: Value = serde_json::from_str(&body).unwrap();
    let auth = format!("Bearer {}", pair["access_token"].as_str().unwrap());
    let (status, me) = app.request("GET", "/me", &[("Authorization", &auth)], "");
    assert_eq!(status, 200, "{me}");
    serde_json::from_str::<Value>(&me).unwrap()["roles"].clone()
}

#[test]
fn admin_emails_grant_admin_to_vouched_accounts_only() {
    let tmp = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", tmp.path().join("users.sqlite").display());
    let signed_up = "signed-up@example.com";
    let app = App::start(
        env!("CARGO_BIN_EXE_axum-app"),
        &[
            ("DATABASE_URL", db.clone().into()),
            (
                "REISSUE_JWT_SECRET",
                "admin-emails-test-secret-0123456789abcdef".into(),
            ),
            (
                "REISSUE_ADMIN_EMAILS",
                format!("someone@example.com, {signed_up}").into(),
            ),
        ],
    );
    // The app's own sign-up: no roles, not vouched.
    let creds = json!({ "email": signed_up, "password": PASSWORD }).to_string();
    let (status, body) = app.request("POST", "/signup", &[], &creds);
    assert_eq!(status, 201, "{body}");
    assert_eq!(roles(&app, signed_up), json!([]));
    let marked = admin(&db, &["users", "vouch", signed_up]);
    assert_eq!(marked["vouched"], true, "{marked}");
    assert_eq!(roles(&app, signed_up), json!(["admin"]));
    assert_eq!(
        admin(&db, &["users", "unvouch", signed_up])["vouched"],
        false
    );
    assert_eq!(roles(&app, signed_up), json!([]));
}
