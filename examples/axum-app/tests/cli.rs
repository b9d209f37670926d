//! The command line of `axum-app`: `--help`, variables and flags.

use reissue_test_support::apps::cli;

const BIN: &str = env!("CARGO_BIN_EXE_axum-app");

#[test]
fn help_lists_every_variable() {
    cli::help_lists_every_variable(BIN);
}

#[test]
fn env_and_flag_both_work() {
    cli::env_and_flag_both_work(BIN);
}
