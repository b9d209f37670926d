//! The wall clock steps back and forward under the running actix app
//! (libfaketime): logins and reissues go on (see
//! `reissue_test_support::apps::clock`).
#![cfg(unix)]

use reissue_test_support::apps::clock;

#[test]
fn survives_wall_clock_steps() {
    clock::survives_wall_clock_steps(env!("CARGO_BIN_EXE_actix-app"));
}
