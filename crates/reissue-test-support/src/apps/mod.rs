//! The tests of the example apps' binaries, written once and run by each
//! app's own test with the path of its binary
//! (`env!("CARGO_BIN_EXE_axum-app")`).

pub mod cli;
#[cfg(unix)]
pub mod clock;
#[cfg(unix)]
pub mod process;
#[cfg(unix)]
pub mod sighup;
#[cfg(unix)]
pub mod strict_stop;
