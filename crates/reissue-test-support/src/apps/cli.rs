//! The command line of both example apps, run on the real binary: `--help`
//! lists every variable of CONTRACT.md's configuration table with its flag
//! and default, each setting works from its variable and from its flag (the
//! flag winning), and a refusal is one line naming the variable whichever
//! way the value came.
//!
//! Run by `examples/{axum,actix}-app/tests/cli.rs` with the path of
//! their binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

/// The variables of CONTRACT.md's configuration table, with their defaults
/// as the table's second column says them.
fn contract_variables() -> Vec<(String, String)> {
    let contract = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/CONTRACT.md"
    ))
    .unwrap();
    let table = contract
        .split_once("Configuration, from the environment:")
        .expect("the configuration table")
        .1;
    let mut vars = Vec::new();
    for row in table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
    {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (Some(names), Some(default)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        // One row may name two variables (`REISSUE_ISSUER`, `REISSUE_AUDIENCE`).
        let names: Vec<&str> = names.split('`').skip(1).step_by(2).collect();
        let defaults: Vec<&str> = default.split('`').skip(1).step_by(2).collect();
        for (i, name) in names.iter().enumerate() {
            let default = if defaults.len() == names.len() {
                defaults[i].to_owned()
            } else {
                String::new()
            };
            vars.push(((*name).to_owned(), default));
        }
    }
    assert!(vars.len() >= 20, "the table: {vars:?}");
    vars
}

fn flag_of(var: &str) -> String {
    let name = var.strip_prefix("REISSUE_").unwrap_or(var);
    format!("--{}", name.to_lowercase().replace('_', "-"))
}

fn app(bin: &str) -> Command {
    let mut command = Command::new(bin);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command
}

/// The help text of one option: from its flag to the next option.
fn option_help<'a>(help: &'a str, flag: &str) -> &'a str {
    let start = help
        .find(&format!("  {flag} "))
        .unwrap_or_else(|| panic!("{flag} is not in --help:\n{help}"));
    let rest = &help[start + 2..];
    let end = rest.find("\n  -").unwrap_or(rest.len());
    &rest[..end]
}

/// `bin --help` lists every variable of CONTRACT.md's configuration table
/// with its flag and default, and shows no secret it was given.
pub fn help_lists_every_variable(bin: &str) {
    let secret = "a-secret-that-help-must-not-show-0123456789";
    let out = app(bin)
        .arg("--help")
        .env("REISSUE_JWT_SECRET", secret)
        .env("DATABASE_URL", "postgres://app:db-password@127.0.0.1/app")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8(out.stdout).unwrap();
    for (var, default) in contract_variables() {
        let option = option_help(&help, &flag_of(&var));
        assert!(option.contains(&format!("[env: {var}")), "{var}: {option}");
        // A default the table gives as a value is the flag's default.
        if !default.is_empty()
            && default
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".:-".contains(c))
        {
            assert!(
                option.contains(&format!("[default: {default}]")),
                "{var} defaults to {default}: {option}"
            );
        }
    }
    assert!(!help.contains(secret), "--help shows the secret:\n{help}");
    assert!(
        !help.contains("db-password"),
        "--help shows the database password:\n{help}"
    );
}

/// Starts the app; the first line of stdout (or the failure).
fn start(mut command: Command) -> Result<(std::process::Child, String), Output> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    if first.starts_with("listening on http://") {
        Ok((child, first))
    } else {
        Err(child.wait_with_output().unwrap())
    }
}

#[track_caller]
fn refused_naming(command: Command, var: &str) -> String {
    match start(command) {
        Ok((mut child, line)) => {
            let _ = child.kill();
            panic!("started ({line}) instead of refusing {var}")
        }
        Err(out) => {
            assert!(!out.status.success(), "{out:?}");
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            let line = stderr.lines().last().unwrap_or_default().to_owned();
            assert!(line.starts_with(var), "{var}: {stderr}");
            line
        }
    }
}

/// Each setting works from its variable and from its flag (the flag
/// winning), and a refusal is one line naming the variable.
pub fn env_and_flag_both_work(bin: &str) {
    let name = std::path::Path::new(bin)
        .file_name()
        .unwrap()
        .to_string_lossy();
    let dir = std::env::temp_dir().join(format!("reissue-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("users.sqlite").display());

    // From the variables.
    let mut by_env = app(bin);
    by_env
        .env("REISSUE_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", &db);
    let (mut child, line) = start(by_env).expect("starts from its variables");
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let _ = child.kill();
    let _ = child.wait();

    // From the flags, which win over a bad variable.
    let mut by_flag = app(bin);
    by_flag
        .env("REISSUE_ADDR", "not an address")
        .env("REISSUE_ACCESS_TTL", "soon")
        .args([
            "--addr",
            "127.0.0.1:0",
            "--access-ttl",
            "60",
            "--database-url",
            &db,
        ]);
    let (mut child, line) = start(by_flag).expect("the flags win");
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let _ = child.kill();
    let _ = child.wait();

    // A bad value refuses to start naming the variable, from either side.
    let mut bad_env = app(bin);
    bad_env
        .env("REISSUE_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", &db)
        .env("REISSUE_ACCESS_TTL", "soon");
    refused_naming(bad_env, "REISSUE_ACCESS_TTL");
    let mut bad_flag = app(bin);
    bad_flag.args([
        "--addr",
        "127.0.0.1:0",
        "--database-url",
        &db,
        "--trusted-proxies",
        "10.0.0.0/99",
    ]);
    refused_naming(bad_flag, "REISSUE_TRUSTED_PROXIES");
    let mut empty_secret = app(bin);
    empty_secret.args(["--addr=127.0.0.1:0", "--database-url", &db, "--jwt-secret="]);
    let line = refused_naming(empty_secret, "REISSUE_JWT_SECRET");
    assert!(line.contains("empty"), "{line}");
    let mut empty_secret_env = app(bin);
    empty_secret_env
        .args(["--addr=127.0.0.1:0", "--database-url", &db])
        .env("REISSUE_JWT_SECRET", "");
    refused_naming(empty_secret_env, "REISSUE_JWT_SECRET");

    // An unknown flag is a usage error.
    let out = app(bin).arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
