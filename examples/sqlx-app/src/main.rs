//! `cargo run -p sqlx-app`, with `REISSUE_JWT_SECRET` (32 bytes or more) and
//! `DATABASE_URL=postgres://...` set; `REISSUE_ADDR` (default
//! `127.0.0.1:3000`) is where it listens.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let var = |name: &str| std::env::var(name).ok();
    let addr = var("REISSUE_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into());
    let started = async {
        let reissue = sqlx_app::Settings::from_lookup(var)?.connect().await?;
        let listener =
            std::net::TcpListener::bind(&addr).map_err(|e| format!("REISSUE_ADDR {addr}: {e}"))?;
        println!(
            "listening on http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        sqlx_app::serve(listener, reissue)
            .await
            .map_err(|e| e.to_string())
    };
    match started.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sqlx-app: {e}");
            ExitCode::FAILURE
        }
    }
}
