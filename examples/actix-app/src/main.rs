//! `actix-app`: configured from flags and the environment (see CONTRACT.md;
//! `actix-app --help` lists them), listens,
//! prints `listening on http://<addr>`, serves until Ctrl-C.

use std::net::TcpListener;
use std::process::ExitCode;

use example_common::Settings;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match actix_web::rt::System::new().block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let addr = settings.addr();
    let state = settings.build().await.map_err(|e| e.to_string())?;
    actix_web::rt::spawn(state.metrics_upkeep());
    #[cfg(unix)]
    actix_web::rt::spawn(
        state
            .reload_on_sighup()
            .map_err(|e| format!("cannot listen for SIGHUP: {e}"))?,
    );
    let listener = TcpListener::bind(addr)
        .map_err(|e| format!("REISSUE_ADDR: cannot listen on {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("REISSUE_ADDR: {e}"))?;
    println!("listening on http://{local}");
    actix_app::serve(listener, state)
        .await
        .map_err(|e| format!("server error: {e}"))
}
