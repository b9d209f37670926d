//! `reissue-admin`: see the crate docs, or `reissue-admin --help`.

use std::process::ExitCode;

use clap::Parser;
use reissue_admin::Cli;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // Quiet unless asked: the report and the one error line are the output.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    // A setting's refusal is one line and status 1, as the other failures;
    // clap reports its own errors (`--help`, a bad flag: status 2).
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match reissue_admin::value::refusal(&e) {
            Some(line) => {
                eprintln!("{line}");
                return ExitCode::FAILURE;
            }
            None => e.exit(),
        },
    };
    match cli.run(&mut std::io::stdout().lock()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
