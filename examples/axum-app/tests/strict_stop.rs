//! Strict revocation with one of three app processes stopped (SIGSTOP)
//! across a logout (see `reissue_test_support::apps::strict_stop`).
#![cfg(unix)]

use reissue_test_support::apps::strict_stop;

#[test]
fn a_stopped_instance_refuses_the_logged_out_session_once_resumed() {
    strict_stop::stopped_instance_refuses_after_resume(env!("CARGO_BIN_EXE_axum-app"));
}
