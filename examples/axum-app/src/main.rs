//! `cargo run -p axum-app`: the example app, configured from flags and the
//! environment (see CONTRACT.md; `axum-app --help` lists them).

use std::process::ExitCode;

use example_common::Settings;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(line) => {
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let addr = settings.addr();
    let state = settings.build().await.map_err(|e| e.to_string())?;
    tokio::spawn(state.metrics_upkeep());
    #[cfg(unix)]
    tokio::spawn(
        state
            .reload_on_sighup()
            .map_err(|e| format!("cannot listen for SIGHUP: {e}"))?,
    );
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("REISSUE_ADDR: cannot listen on {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("REISSUE_ADDR: {e}"))?;
    println!("listening on http://{local}");
    axum_app::serve(listener, state)
        .await
        .map_err(|e| format!("server error: {e}"))
}
