//! SIGHUP reloads `REISSUE_GEOIP_DB` in the running axum app (see
//! `reissue_test_support::apps::sighup`).
#![cfg(unix)]

use reissue_test_support::apps::sighup;

#[test]
fn sighup_reloads_the_geoip_database() {
    sighup::reloads_geoip_on_sighup(env!("CARGO_BIN_EXE_axum-app"));
}
