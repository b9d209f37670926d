//! SIGHUP reloads `REISSUE_GEOIP_DB` in the running actix app (see
//! `examples/common/tests/support/sighup.rs`).
#![cfg(unix)]

#[path = "../../common/tests/support/sighup.rs"]
mod sighup;

#[test]
fn sighup_reloads_the_geoip_database() {
    sighup::reloads_geoip_on_sighup(env!("CARGO_BIN_EXE_actix-app"));
}
