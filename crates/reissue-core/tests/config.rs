//! `Config` edges, refused at `ReissueBuilder::build` with `Error::Config`
//! rather than overflowing (or panicking) at the first login or reissue.

mod support;

use std::sync::Arc;
use std::time::Duration;

use reissue_core::store::MemoryStore;
use reissue_core::{Config, Error, Reissue};
use support::{AnyUser, hs256_keys};

const DAY: Duration = Duration::from_secs(24 * 3600);
const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

fn build(config: Config) -> Result<Reissue<AnyUser>, Error> {
    Reissue::builder(config, hs256_keys(), Arc::new(MemoryStore::new()), AnyUser).build()
}

fn base() -> Config {
    Config::new("config-test", "config-test")
}

#[track_caller]
fn refused(config: Config, mentions: &str) {
    match build(config) {
        Err(Error::Config(why)) => assert!(why.contains(mentions), "{why:?} lacks {mentions:?}"),
        other => panic!("expected Error::Config about {mentions}, got {other:?}"),
    }
}

#[test]
fn the_grace_window_is_at_most_the_idle_lifetime() {
    build(base()).unwrap();
    let idle = Duration::from_secs(60);
    build(base().refresh_ttl(idle).reuse_grace(idle)).expect("equal is fine");
    build(base().refresh_ttl(idle).reuse_grace(Duration::ZERO)).expect("zero is strict");
    refused(
        base()
            .refresh_ttl(idle)
            .reuse_grace(idle + Duration::from_millis(1)),
        "grace",
    );
    refused(
        base()
            .refresh_ttl(Duration::from_secs(1))
            .reuse_grace(Duration::from_secs(10)),
        "grace",
    );
}

#[test]
fn lifetimes_that_would_overflow_are_refused() {
    // Each setting alone, at values that overflow u64 milliseconds, i64
    // milliseconds (the Redis arguments), or exact Lua numbers (2^53 ms).
    let huge = [
        Duration::MAX,
        Duration::from_millis(u64::MAX),
        Duration::from_millis(i64::MAX as u64),
        Duration::from_millis(1 << 53),
        YEAR * 101,
    ];
    for d in huge {
        refused(base().access_ttl(d), "access_ttl");
        refused(base().refresh_ttl(d).session_max_age(d), "refresh_ttl");
        refused(base().session_max_age(d), "session_max_age");
        refused(base().login_lockout(5, d), "login_lockout");
        // A huge grace within a huge idle lifetime: the bound still holds.
        refused(base().reuse_grace(d), "reuse_grace");
    }
    for jitter in [-0.1, 0.6, f64::NAN] {
        refused(base().access_ttl_jitter(jitter), "access_ttl_jitter");
    }
    // Long but sane lifetimes are fine, and a session of them works.
    let long = YEAR * 100;
    let r = build(
        base()
            .access_ttl(long)
            // exactly the configured lifetime, for the figure below
            .access_ttl_jitter(0.0)
            .refresh_ttl(long)
            .session_max_age(long)
            .reuse_grace(DAY)
            .login_lockout(5, long),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = r.client_at(None, None);
        let pair = r.login("long".to_owned(), &client).await.unwrap();
        assert!(pair.expires_in > 99 * YEAR.as_secs(), "{}", pair.expires_in);
        r.reissue(&pair.refresh_token, &client).await.unwrap();
    });
}

#[test]
fn zero_lifetimes_are_refused() {
    refused(base().access_ttl(Duration::ZERO), "lifetimes");
    refused(base().refresh_ttl(Duration::ZERO), "lifetimes");
    refused(base().session_max_age(Duration::ZERO), "absolute");
    refused(
        base().session_max_age(Duration::from_millis(999)),
        "absolute",
    );
    // An absolute lifetime shorter than the idle one is allowed: the idle
    // expiry is capped by it.
    build(base().session_max_age(Duration::from_secs(60))).unwrap();
}

#[test]
fn the_strict_lease_stays_within_what_an_ending_call_waits_out() {
    for lease in [Duration::from_millis(399), Duration::from_millis(4001)] {
        refused(base().strict_lease(lease), "strict_lease");
    }
    for lease in [Duration::from_millis(400), Duration::from_secs(4)] {
        build(base().strict_lease(lease)).unwrap();
    }
}
