//! examples/sqlx-app, an app whose users live in its own Postgres table
//! through sqlx, against the conformance suite's login and reissue rows (the
//! scenarios of `contract.rs`, unchanged, included here), on the memory store
//! and the shared Redis; and a login flood against its bounded password
//! queue (issue 25, item 8).
//!
//! Its own runner (`harness = false`): the rows are contract.rs's functions,
//! and including that file under libtest would run all of its cells again.
//! Arguments filter by substring, as libtest's do; it prints libtest's
//! summary line and exits non-zero on a failure.
#![allow(missing_docs)]

#[path = "contract.rs"]
#[allow(dead_code, unused_imports)]
mod contract;

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::future::join_all;
use reissue_conformance::*;
use serde_json::json;

/// The login and reissue rows of CONTRACT.md, by their names in contract.rs.
const ROWS: &[&str] = &[
    "login_token_response",
    "login_access_token_claims",
    "login_failures_are_indistinguishable",
    "login_unusable_body",
    "login_lockout",
    "login_throttled_per_network",
    "login_parallel_guesses_capped",
    "login_malformed_email_not_counted",
    "login_account_ceiling_across_networks",
    "reissue_bearer",
    "reissue_json_body",
    "reissue_unusable_body",
    "reissue_access_token_refused",
    "reissue_forged_refresh_tokens",
    "reissue_grace_window_same_token",
    "reissue_concurrent",
    "reissue_reuse_after_grace",
    "reissue_reuse_strict_grace",
    "reissue_older_generation",
    "reissue_after_logout",
    "session_absolute_lifetime",
    "session_idle_lifetime",
    "session_idle_renewed_by_reissue",
];

type Scenario = fn(Target) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if args.iter().any(|a| a == "--list") {
        // What cargo-nextest and IDEs ask for.
        for (name, _, _) in cases() {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    let cases: Vec<_> = cases()
        .into_iter()
        .filter(|(name, _, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f)))
        .collect();
    println!("\nrunning {} tests", cases.len());
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    // Four at a time: most rows wait on the clock, not the CPU.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                while let Some((name, target, scenario)) =
                    cases.get(next.fetch_add(1, Ordering::Relaxed))
                {
                    let (target, scenario) = (*target, *scenario);
                    let outcome = std::panic::catch_unwind(|| run(target, scenario));
                    println!(
                        "test {name} ... {}",
                        if outcome.is_ok() { "ok" } else { "FAILED" }
                    );
                    if outcome.is_err() {
                        failed.lock().unwrap().push(name.clone());
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap();
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; 0 filtered out\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        cases.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Every (name, target, scenario): the rows on both stores, then the flood.
fn cases() -> Vec<(String, Target, Scenario)> {
    let mut all = Vec::new();
    for (cell, store) in [("sqlx_memory", Store::Memory), ("sqlx_redis", Store::Redis)] {
        let target = Target {
            adapter: Adapter::Sqlx,
            store,
        };
        for row in ROWS {
            let scenario = contract::scenario(row)
                .unwrap_or_else(|| panic!("contract.rs has no scenario {row}"));
            all.push((format!("{cell}::{row}"), target, scenario));
        }
        let flood: Scenario = |t| Box::pin(a_login_flood_gets_503_not_a_wait(t));
        all.push((
            format!("{cell}::a_login_flood_gets_503_not_a_wait"),
            target,
            flood,
        ));
    }
    all
}

/// Issue 25, item 8: logins for random emails from many networks (so that
/// no throttle applies) flood the password queue, shrunk to one hash at a
/// time and two waiting. Every request still gets an answer of its own: the
/// flood's are 401 or 503 with `Retry-After`, never a wait without end (the
/// client's timeout would fail the request), and some are 503, so the bound
/// held. A legitimate login in the middle gets 200 or 503 with
/// `Retry-After`, and once the flood is over, 200.
async fn a_login_flood_gets_503_not_a_wait(t: Target) {
    let s = t.start(&[
        ("REISSUE_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("REISSUE_HASH_CONCURRENCY", "1"),
        ("REISSUE_HASH_QUEUE", "2"),
        // Slow enough hashes that 60 requests sent at once overlap them.
        ("REISSUE_ARGON2", "32768,2,1"),
    ]);
    let ada = format!("ada{}@example.com", unique());
    s.signup(&ada, PASSWORD).await;
    let flood = (0..60).map(|i| {
        let (email, ip) = (
            format!("random{}-{i}@example.com", unique()),
            format!("198.{}.{}.7", 18 + i % 2, i),
        );
        let req = s
            .post("/auth/login")
            .header("x-forwarded-for", ip)
            .json(&json!({ "email": email, "password": "a guess of a password" }));
        s.send(req)
    });
    let legit = s.send(
        s.post("/auth/login")
            .header("x-forwarded-for", "203.0.113.9")
            .json(&json!({ "email": ada, "password": PASSWORD })),
    );
    let (flood, legit) = tokio::join!(join_all(flood), legit);
    let mut refused = 0;
    for r in &flood {
        match r.status {
            401 => {
                r.assert_invalid_credentials();
            }
            503 => {
                r.assert_error(503, "temporarily_unavailable");
                r.assert_retry_after(5);
                refused += 1;
            }
            other => panic!("{}: a flooding login got {other} {}", r.what, r.text),
        }
    }
    assert!(
        refused > 0,
        "60 logins at once for 1 running + 2 waiting hashes: none was refused, so the queue was not bounded"
    );
    match legit.status {
        200 => {
            legit.tokens();
        }
        503 => {
            legit.assert_error(503, "temporarily_unavailable");
            legit.assert_retry_after(5);
        }
        other => panic!("the legitimate login got {other} {}", legit.text),
    }
    // The flood is over: the queue has drained, and the user gets in.
    s.send(
        s.post("/auth/login")
            .header("x-forwarded-for", "203.0.113.9")
            .json(&json!({ "email": ada, "password": PASSWORD })),
    )
    .await
    .tokens();
}
